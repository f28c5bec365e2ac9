"""Billing: what a session costs and everything that reads it.

``pricing`` is the only place tariffs are evaluated; invoices, exports, prepaid
balances and the activity report read the price it stores with each session.
"""
