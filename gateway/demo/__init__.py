"""The demo: a whole simulated fablab on one machine (``fabgate demo``).

``site`` (the site's constants and files), ``scenario`` (scripted members), ``year`` (a
generated year of history), ``run`` (starting everything) and ``broker`` (the embedded
amqtt broker). Nothing is imported here, so a module that needs only the site's
constants does not pull in the hub, Flask or amqtt.
"""
