"""A tiny French/English catalogue for the pages.

Two languages and a few dozen strings do not justify gettext tooling: a dict keeps the
translations reviewable side by side. French is the site default; a missing key falls
back to French, then to the key itself, so a forgotten string shows up but never breaks
a page.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Request

LANGUAGES = ("fr", "en")
DEFAULT = "fr"

CATALOGUE: dict[str, dict[str, str]] = {
    "fr": {
        "title": "Machines de l'atelier",
        "machines": "Machines",
        "recent_sessions": "Dernières sessions",
        "state.free": "Libre",
        "state.in_use": "Utilisée",
        "state.offline": "Hors ligne",
        "state.out_of_service": "Hors service",
        "in_use_by": "par {name} depuis {since}",
        "activity.idle": "à l'arrêt",
        "activity.busy": "en marche",
        "activity.paused": "en pause",
        "activity.alarm": "en alarme",
        "activity.error": "en erreur",
        "activity.unknown": "état inconnu",
        "job": "Travail {name} : {progress}",
        "job_paused": "en pause",
        "ending": "badge retiré : courant maintenu jusqu'à la fin du travail",
        "col.busy": "Minutes en marche",
        "unknown_member": "membre inconnu",
        "col.machine": "Machine",
        "col.member": "Membre",
        "col.project": "Projet",
        "col.start": "Début",
        "col.end": "Fin",
        "col.duration": "Durée",
        "col.billed": "Minutes facturées",
        "col.state": "État",
        "open": "en cours",
        "no_machines": "Aucune machine configurée.",
        "no_sessions": "Aucune session pour l'instant.",
        "updated": "Mis à jour à {time}",
        "refresh_failed": "Actualisation impossible, nouvel essai…",
        "language": "Langue",
        "minutes": "{n} min",
    },
    "en": {
        "title": "Workshop machines",
        "machines": "Machines",
        "recent_sessions": "Recent sessions",
        "state.free": "Free",
        "state.in_use": "In use",
        "state.offline": "Offline",
        "state.out_of_service": "Out of service",
        "in_use_by": "by {name} since {since}",
        "activity.idle": "idle",
        "activity.busy": "running",
        "activity.paused": "paused",
        "activity.alarm": "in alarm",
        "activity.error": "in error",
        "activity.unknown": "state unknown",
        "job": "Job {name}: {progress}",
        "job_paused": "paused",
        "ending": "badged out: power kept until the job ends",
        "col.busy": "Busy minutes",
        "unknown_member": "unknown member",
        "col.machine": "Machine",
        "col.member": "Member",
        "col.project": "Project",
        "col.start": "Start",
        "col.end": "End",
        "col.duration": "Duration",
        "col.billed": "Billed minutes",
        "col.state": "State",
        "open": "in progress",
        "no_machines": "No machine configured.",
        "no_sessions": "No session yet.",
        "updated": "Updated at {time}",
        "refresh_failed": "Refresh failed, retrying…",
        "language": "Language",
        "minutes": "{n} min",
    },
}


def choose_language(request: Request, configured: str | None) -> str:
    """``?lang=`` first (a shared link keeps its language), then the browser's
    Accept-Language, then the site's configured language."""
    asked = request.args.get("lang", "").lower()
    if asked in LANGUAGES:
        return asked
    best = request.accept_languages.best_match(LANGUAGES)
    if best:
        return best
    return configured if configured in LANGUAGES else DEFAULT


def translator(lang: str) -> Callable[..., str]:
    table = CATALOGUE.get(lang, CATALOGUE[DEFAULT])

    def t(key: str, **values: object) -> str:
        text = table.get(key) or CATALOGUE[DEFAULT].get(key) or key
        return text.format(**values) if values else text

    return t
