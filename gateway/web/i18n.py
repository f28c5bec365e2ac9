"""A tiny French/English catalogue for the pages.

Two languages and a few dozen strings do not justify gettext tooling: a dict keeps the
translations reviewable side by side. French is the site default; a missing key falls
back to French, then to the key itself, so a forgotten string shows up but never breaks
a page.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Request

from gateway.web import i18n_admin

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
        "silent_since": "sans nouvelles depuis {since}",
        "state.out_of_service": "Hors service",
        "in_use_by": "par {name} depuis {since}",
        "in_use_since": "depuis {since}",
        "refusals_count": "{count} message(s) du nœud {node} refusé(s)",
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
        # Accounts and API tokens (gateway/web/auth.py, tokens.py).
        "auth.login.title": "Connexion",
        "auth.email": "Adresse e-mail",
        "auth.password": "Mot de passe",
        "auth.login.submit": "Se connecter",
        "auth.logout": "Se déconnecter",
        "auth.account": "Mon compte",
        "auth.bad_credentials": "Adresse e-mail ou mot de passe incorrect.",
        "auth.locked": (
            "Trop d'essais infructueux : connexion bloquée pendant encore {minutes} min."
        ),
        "auth.login_required": "Connexion requise.",
        "auth.forbidden": "Accès refusé : votre rôle ne permet pas d'ouvrir cette page.",
        "auth.csrf_failed": (
            "Formulaire expiré ou envoyé depuis un autre site : rechargez la page et recommencez."
        ),
        "auth.bad_current": "Mot de passe actuel incorrect.",
        "auth.mismatch": "Les deux nouveaux mots de passe ne sont pas identiques.",
        "auth.too_short": "Le nouveau mot de passe doit compter au moins {n} caractères.",
        "account.title": "Mon compte",
        "account.name": "Nom",
        "account.roles": "Rôles",
        "account.trains": "Formateur pour",
        "account.password.title": "Changer de mot de passe",
        "account.password.current": "Mot de passe actuel",
        "account.password.new": "Nouveau mot de passe (au moins {n} caractères)",
        "account.password.confirm": "Nouveau mot de passe, à nouveau",
        "account.password.submit": "Changer le mot de passe",
        "account.password.done": (
            "Mot de passe changé. Vos sessions ouvertes sur d'autres appareils sont fermées."
        ),
        "role.member": "membre",
        "role.trainer": "formateur",
        "role.fabmanager": "fabmanager",
        "role.accountant": "comptable",
        "role.admin": "administrateur",
        "tokens.title": "Jetons d'API",
        "tokens.intro": (
            "Un jeton permet à un logiciel (comptabilité, tableur, script) de "
            "lire l'API du hub. Chaque jeton n'ouvre que les droits cochés."
        ),
        "tokens.create": "Créer un jeton",
        "tokens.name": "Nom (à quoi il sert)",
        "tokens.scopes": "Droits",
        "tokens.created": ("Jeton créé. Copiez-le maintenant : il ne sera plus jamais affiché."),
        "tokens.invalid": "Jeton non créé : {error}",
        "tokens.none": "Aucun jeton pour l'instant.",
        "tokens.col.name": "Nom",
        "tokens.col.scopes": "Droits",
        "tokens.col.created": "Créé le",
        "tokens.col.by": "Par",
        "tokens.col.last_used": "Dernier usage",
        "tokens.col.status": "État",
        "tokens.active": "actif",
        "tokens.revoked": "révoqué le {date}",
        "tokens.never": "jamais",
        "tokens.revoke": "Révoquer",
        "tokens.config_note": (
            "Les jetons écrits dans le fichier de configuration du hub "
            "ont tous les droits et n'apparaissent pas ici."
        ),
        "scope.usage": "usage (minutes et montants)",
        "scope.invoices": "factures et clôture des mois",
        "scope.machines": "machines en direct",
        "scope.sessions": "sessions",
        "scope.jobs": "travaux des machines",
        "scope.report": "rapport d'activité",
        "scope.members": "membres : liste, création, export des données d'un membre",
        "scope.metrics": "métriques de supervision (/metrics)",
        "minutes": "{n} min",
        # Activity report (gateway/web/report.py).
        "report.title": "Rapport d'activité",
        "report.period": "du {start} au {end}",
        "report.generated": "Édité le {date} · heures locales ({tz})",
        "report.from": "Du",
        "report.to": "Jusqu'au (exclu)",
        "report.show": "Afficher",
        "report.csv": "Télécharger en CSV",
        "report.summary": "En bref",
        "report.kpi.members": "membres venus",
        "report.kpi.sessions": "sessions",
        "report.kpi.hours": "heures machine",
        "report.kpi.occupancy": "occupation moyenne",
        "report.kpi.new_members": "nouveaux membres",
        "report.kpi.certifications": "habilitations délivrées",
        "report.kpi.revenue": "recettes",
        "report.attendance": "Fréquentation",
        "report.attendance.members_chart": "Membres distincts par mois, par catégorie",
        "report.attendance.sessions_chart": "Sessions par mois, par catégorie",
        "report.attendance.desc": (
            "Mois le plus fréquenté : {month}, {n}. Sur la période : {total}."
        ),
        "report.attendance.note": (
            "Un membre venu plusieurs mois ne compte qu'une fois sur la période : le total "
            "n'est pas la somme des mois."
        ),
        "report.occupancy": "Occupation des machines",
        "report.occupancy.chart": "Taux d'occupation des machines pendant les heures d'ouverture",
        "report.occupancy.by_month": "Occupation par mois",
        "report.occupancy.note": (
            "Occupation = minutes de session pendant les heures d'ouverture ÷ minutes "
            "d'ouverture de la période ({hours}). Une session qui déborde sur la fermeture "
            "ne compte que pour sa partie dans les horaires. Les fermetures exceptionnelles "
            "(congés, jours fériés) ne sont pas connues du hub et comptent comme ouvertes."
        ),
        "report.opening_hours": "Horaires d'ouverture",
        "report.closed": "fermé",
        "report.usage": "Heures et recettes par machine",
        "report.usage.chart": "Heures d'utilisation par machine, par catégorie",
        "report.usage.desc": "Heures d'utilisation : {values}.",
        "report.revenue_na": "non disponible",
        "report.revenue_na.note": (
            "Recettes non disponibles : le hub n'enregistre pas encore le prix des sessions."
        ),
        "report.new_members": "Nouveaux membres",
        "report.new_members.chart": "Nouveaux membres par mois, par catégorie",
        "report.new_members.na": (
            "Non disponible : le hub n'enregistre pas encore la date d'adhésion des membres."
        ),
        "report.certifications": "Habilitations délivrées",
        "report.certifications.chart": "Habilitations délivrées par groupe de machines, par niveau",
        "report.certifications.none": "Aucune habilitation délivrée sur la période.",
        "report.projects": "Usage par projet",
        "report.projects.chart": "Heures d'utilisation des {n} projets les plus actifs",
        "report.projects.no_project": "Sans projet",
        "report.projects.others": "{n} autres projets",
        "report.projects.note": "{with_project} des heures machine sont rattachées à un projet.",
        "report.method": "Méthode",
        "report.method.sessions": (
            "Seules les sessions terminées comptent, chacune dans le mois où elle a "
            "commencé et pour toute sa durée. La catégorie d'un membre est celle qu'il a "
            "aujourd'hui."
        ),
        "report.no_data": "Aucune session sur la période.",
        "report.bad_period": "Période invalide : {error}",
        "report.col.month": "Mois",
        "report.col.total": "Total",
        "report.col.period": "Période",
        "report.col.members": "Membres",
        "report.col.members_short": "Memb.",
        "report.col.sessions_short": "Sess.",
        "report.col.sessions": "Sessions",
        "report.col.hours": "Heures",
        "report.col.busy_hours": "Heures en marche",
        "report.col.jobs": "Travaux",
        "report.col.revenue": "Recettes",
        "report.col.occupancy": "Occupation",
        "report.col.in_hours": "Heures dans les horaires",
        "report.col.category": "Catégorie",
        "report.col.group": "Groupe de machines",
        "report.col.level": "Niveau",
        "report.col.granted": "Délivrées",
        "report.col.revoked": "Retirées depuis",
        "report.col.project": "Projet",
        "report.col.owner": "Porteur",
        "report.all": "Toutes",
        "level.0": "aucun",
        "level.1": "encadré",
        "level.2": "autonome",
        "level.3": "formateur",
        "cat.grand_public": "Grand public",
        "cat.adherent": "Adhérents",
        "cat.professionnel": "Professionnels",
        "cat.scolaire": "Scolaires",
        "cat.association": "Associations",
        "cat.unknown": "Inconnus",
        "unit.hours": "{n} h",
        "unit.members": "{n} membres",
        "unit.sessions": "{n} sessions",
        "month.1": "janv.",
        "month.2": "févr.",
        "month.3": "mars",
        "month.4": "avr.",
        "month.5": "mai",
        "month.6": "juin",
        "month.7": "juil.",
        "month.8": "août",
        "month.9": "sept.",
        "month.10": "oct.",
        "month.11": "nov.",
        "month.12": "déc.",
        "monthname.1": "janvier",
        "monthname.2": "février",
        "monthname.3": "mars",
        "monthname.4": "avril",
        "monthname.5": "mai",
        "monthname.6": "juin",
        "monthname.7": "juillet",
        "monthname.8": "août",
        "monthname.9": "septembre",
        "monthname.10": "octobre",
        "monthname.11": "novembre",
        "monthname.12": "décembre",
        "day.mon": "lundi",
        "day.tue": "mardi",
        "day.wed": "mercredi",
        "day.thu": "jeudi",
        "day.fri": "vendredi",
        "day.sat": "samedi",
        "day.sun": "dimanche",
        # Members, certifications, badges, projects, my page (gateway/web/people.py).
        "nav.label": "Navigation",
        "nav.board": "Machines",
        "nav.me": "Mon espace",
        "nav.projects": "Mes projets",
        "nav.members": "Membres",
        "nav.certify": "Habiliter",
        "nav.report": "Rapport d'activité",
        "nav.tokens": "Jetons d'API",
        "members.title": "Membres",
        "members.filter": "Chercher un membre",
        "members.category": "Catégorie",
        "members.status": "Statut",
        "members.status.active": "actif",
        "members.status.suspended": "suspendu",
        "members.membership_end": "Adhésion jusqu'au",
        "members.badges": "Badges actifs",
        "members.until": "adhésion jusqu'au {date}",
        "cert.title": "Habilitations",
        "cert.group": "Groupe de machines",
        "cert.level": "Niveau",
        "cert.by": "Habilité par",
        "cert.at": "Le",
        "cert.expires": "Expire le",
        "cert.lapses": "Caduque le",
        "cert.state": "État",
        "cert.no_expiry": "sans limite",
        "cert.state.live": "valide",
        "cert.state.expired": "expirée",
        "cert.state.revoked": "retirée",
        "cert.lapses_help": (
            "« Caduque le » : sans utilisation d'une machine du groupe d'ici là, l'habilitation "
            "tombe. Chaque utilisation repousse cette date ; l'expiration, elle, ne bouge pas."
        ),
        "cert.none": "Aucune habilitation.",
        "certify.title": "Habiliter un membre",
        "certify.this_member": "Habiliter ce membre",
        "certify.help": (
            "Choisissez le membre, le groupe de machines (par exemple « Découpe laser ») et le "
            "niveau, puis validez. Les machines du groupe l'accepteront dans les secondes qui "
            "suivent."
        ),
        "certify.no_groups": "Vous ne formez sur aucun groupe de machines.",
        "certify.member": "Membre",
        "certify.choose": "— choisir —",
        "certify.group": "Groupe de machines",
        "certify.group_help": "L'habilitation vaut pour toutes les machines du groupe.",
        "certify.level": "Niveau",
        "certify.level_help.0": "note une formation sans donner accès",
        "certify.level_help.1": "seulement quand un encadrant est présent",
        "certify.level_help.2": "peut utiliser les machines seul",
        "certify.level_help.3": "peut aussi habiliter les autres",
        "certify.level_fabmanager": "réservé au fabmanager",
        "certify.validity": "Validité (en mois)",
        "certify.validity_help": "Par défaut, la durée prévue pour ce groupe.",
        "certify.note": "Remarque (facultatif)",
        "certify.note_placeholder": "par ex. formation du samedi, contreplaqué 3 mm",
        "certify.submit": "Habiliter",
        "certify.done": "{name} est habilité(e) niveau {level} sur « {group} » jusqu'au {until}.",
        "certify.higher_kept": (
            "Ce membre garde son niveau {level}, plus élevé : retirez l'habilitation pour "
            "l'abaisser."
        ),
        "certify.err.self": "On ne peut pas s'habiliter soi-même.",
        "certify.err.not_your_group": "Vous ne formez pas sur ce groupe de machines.",
        "certify.err.trainer_level": (
            "Un formateur habilite jusqu'au niveau {max} ; le niveau 3 est délivré par le "
            "fabmanager."
        ),
        "certify.err.member": "Choisissez un membre.",
        "certify.err.group": "Choisissez un groupe de machines.",
        "certify.err.level": "Choisissez un niveau de 0 à 3.",
        "certify.err.validity": "La validité est un nombre de mois entre 1 et {max}.",
        "revoke.submit": "Retirer",
        "revoke.confirm": "Retirer l'habilitation « {group} » ?",
        "revoke.done": "Habilitation retirée : les machines la refusent dès maintenant.",
        "revoke.none": "Aucune habilitation en cours à retirer.",
        "revoke.err.trainer_level": (
            "Un formateur ne peut pas retirer une habilitation de niveau 3."
        ),
        "badge.title": "Badges",
        "badge.status.active": "actif",
        "badge.status.blocked": "bloqué",
        "badge.block": "Bloquer (perdu)",
        "badge.block_help": "Un badge bloqué est refusé par toutes les machines en une seconde.",
        "badge.none": "Aucun badge.",
        "badge.blocked": "Badge {uid} bloqué.",
        "badge.err.not_active": "Le badge {uid} n'est pas actif.",
        "enrol.submit": "Enregistrer un badge",
        "enrol.help": "puis présentez le nouveau badge sur n'importe quelle machine (30 s).",
        "enrol.pending": (
            "En attente d'un badge présenté sur n'importe quelle machine… (jusqu'à {until})"
        ),
        "enrol.attached": "Badge {uid} rattaché.",
        "enrol.refused": "Badge {uid} refusé : {detail}.",
        "enrol.expired": "Délai dépassé : aucun badge présenté. Recommencez.",
        "projects.title": "Mes projets",
        "projects.current": "Projet en cours",
        "projects.current_help": (
            "Vos prochaines sessions aux machines seront comptées sur ce projet."
        ),
        "projects.none": "sans projet",
        "projects.save_current": "Enregistrer",
        "projects.empty": "Aucun projet pour l'instant.",
        "projects.new": "Nouveau projet",
        "projects.name": "Nom du projet",
        "projects.make_current": "En faire mon projet en cours",
        "projects.create": "Créer",
        "projects.is_current": "en cours",
        "projects.created": "Projet « {name} » créé.",
        "projects.current_set": "Projet en cours enregistré.",
        "projects.err.name": "Le nom du projet est obligatoire ({max} caractères au plus).",
        "projects.err.not_yours": "Ce projet n'est pas le vôtre.",
        "move.label": "Projet de la session",
        "move.submit": "Déplacer",
        "move.help": (
            "Une session peut changer de projet tant que son mois n'est pas clôturé "
            "(factures émises)."
        ),
        "move.closed_short": "mois clôturé",
        "move.closed_hint": "Le mois est clôturé : la session ne peut plus changer de projet.",
        "move.done": "Session déplacée.",
        "move.err.unknown": "Session inconnue.",
        "move.err.not_yours": "Cette session n'est pas la vôtre.",
        "move.err.open": "La session est en cours : déplacez-la une fois terminée.",
        "move.err.project": "Choisissez un projet du même membre.",
        "move.err.closed": (
            "Le mois {month} est clôturé (factures émises) : cette session ne peut plus changer "
            "de projet."
        ),
        "me.title": "Mon espace",
        "me.hello": "Bonjour {name}",
        "me.minutes_month": "minutes machine ce mois-ci",
        "me.minutes_year": "minutes machine en {year}",
        "me.certifications": "Mes habilitations",
        "me.projects": "Mes projets",
        "me.manage_projects": "Gérer mes projets",
        "me.sessions": "Sessions",
        # Invoices, payments, closing (gateway/web/invoices.py, invoice_pdf.html).
        "nav.invoices": "Factures",
        "invoices.title": "Factures et avoirs",
        "invoices.open_month": "Le mois {month} est terminé et n'est pas encore clôturé.",
        "close.link": "Clôturer {period}…",
        "invoices.from": "De",
        "invoices.to": "à",
        "invoices.payer": "Payeur",
        "invoices.status": "État",
        "invoices.status.any": "tous",
        "status.paid": "payée",
        "status.part_paid": "payée en partie",
        "status.unpaid": "non payée",
        "status.credit_note": "avoir",
        "invoices.filter": "Filtrer",
        "invoices.number": "Numéro",
        "invoices.period": "Mois",
        "invoices.issued": "Émise le",
        "invoices.total_ttc": "Total TTC",
        "invoices.paid": "Payé",
        "invoices.organisation": "organisation",
        "invoices.count": "{n} document(s)",
        "invoices.due_total": "reste dû : {amount}",
        "invoices.none": "Aucun document pour ces critères.",
        "invoices.journal": "Journal des ventes de {first} à {last} (CSV)",
        "invoices.err.no_seller": (
            "Les coordonnées du vendeur manquent : ajoutez la section invoicing: à {file}."
        ),
        "doc.invoice": "Facture",
        "doc.credit_note": "Avoir",
        "invoice.pdf": "PDF",
        "doc.service_period": "Période de prestation",
        "doc.due_date": "Échéance",
        "doc.issue_date": "Date d'émission",
        "invoice.paid_so_far": "payé {paid}, reste dû {due}",
        "doc.line": "Désignation",
        "doc.lines": "Lignes",
        "doc.quantity": "Quantité",
        "doc.unit_price": "Prix unitaire HT",
        "doc.vat_rate": "TVA",
        "doc.amount_ht": "Montant HT",
        "doc.base_ht": "Base HT",
        "doc.vat": "Montant TVA",
        "doc.total_ht": "Total HT",
        "doc.total_vat": "Total TVA",
        "doc.total_ttc": "Total TTC",
        "doc.left_due": "Reste dû",
        "doc.vat_number": "N° TVA intracommunautaire",
        "doc.buyer": "Client",
        "doc.customer_ref": "Référence client",
        "doc.payment_terms": "Conditions de paiement",
        "doc.transfer": "Virement",
        "doc.reference": "référence",
        "doc.late_penalties": (
            "En cas de retard de paiement, des pénalités sont exigibles au taux de {rate}, "
            "sans qu'un rappel soit nécessaire (art. L441-10 du code de commerce)."
        ),
        "doc.recovery_fee": (
            "Indemnité forfaitaire pour frais de recouvrement due au créancier en cas de "
            "retard de paiement : {amount} (art. D441-5 du code de commerce)."
        ),
        "doc.integrity": "Empreinte SHA-256 du document :",
        "unit.MIN": "min",
        "unit.C62": "forfait",
        "payments.title": "Paiements",
        "payments.paid_on": "Date",
        "payments.means": "Moyen",
        "payments.amount": "Montant (€)",
        "payments.reference": "Référence",
        "payments.note": "Note",
        "payments.by": "Saisi par",
        "payments.none": "Aucun paiement enregistré.",
        "payments.correction": "Correction (montant retiré)",
        "payments.record": "Enregistrer le paiement",
        "payments.recorded": "Paiement de {amount} enregistré sur {number}.",
        "payments.err.amount": "Montant invalide : en euros, par exemple 12,50.",
        "payments.err.date": "Date invalide.",
        "payments.err.means": "Moyen de paiement inconnu.",
        "payments.err.zero": "Un paiement de 0 n'enregistre rien.",
        "payments.err.note": "Une correction doit dire pourquoi (note).",
        "payments.err.future": "Un paiement ne peut pas être daté dans le futur.",
        "payments.err.credit_note": "Un avoir ne se paie pas.",
        "payments.err.too_much": "Ce paiement dépasserait le montant dû.",
        "payments.err.below_zero": "Une correction ne peut pas rendre le total payé négatif.",
        "means.card": "carte",
        "means.cash": "espèces",
        "means.cheque": "chèque",
        "means.transfer": "virement",
        "means.credit": "crédit prépayé",
        "means.direct_debit": "prélèvement",
        "means.other": "autre",
        "close.title": "Clôture du mois {period}",
        "close.already": "Le mois {period} est clôturé.",
        "close.explain": (
            "Clôturer {period} émet les factures et avoirs ci-dessous, numérotés et "
            "définitifs : ils ne pourront plus être modifiés, seulement corrigés par un "
            "avoir."
        ),
        "close.no_seller": (
            "Attention : la configuration n'a pas de coordonnées vendeur (invoicing:), les "
            "PDF ne pourront pas être produits avant de l'ajouter."
        ),
        "close.kind": "Document",
        "close.count": "{n} document(s)",
        "close.empty": "Aucune session à facturer : la clôture n'émettra aucun document.",
        "close.type": "Pour confirmer, tapez {period} :",
        "close.submit": "Clôturer {period} définitivement",
        "close.err.not_ended": "Le mois {period} n'est pas terminé.",
        "close.err.confirm": "Confirmation manquante : tapez {period} pour clôturer.",
        "close.err.blocked": "Clôture impossible : {detail}",
        "close.done": "Mois {period} clôturé : {count} document(s) émis.",
        "me.credit": "de crédit prépayé",
        "me.invoices": "Mes factures",
        "me.no_invoices": "Aucune facture à votre nom.",
        "col.amount": "Montant HT",
        "col.unpriced": "sans tarif",
        # Personal data (gateway/web/privacy.py, docs/rgpd.md).
        "privacy.title": "Données personnelles",
        "privacy.me_help": (
            "Téléchargez tout ce que le lieu conserve sur vous (fichier JSON) : identité, "
            "badges, habilitations, sessions, factures, passages de badge."
        ),
        "export.mine": "Télécharger mes données",
        "export.submit": "Exporter les données du membre",
        "erase.link": "Effacer ce membre…",
        "erase.title": "Effacer un membre",
        "erase.intro": (
            "L'effacement remplace le membre {id} par un pseudonyme stable. Il est définitif."
        ),
        "erase.goes": (
            "Disparaissent : nom, e-mail, badges (la carte pourra être réattribuée), "
            "compte de connexion, notes, noms des projets et des fichiers, passages de badge."
        ),
        "erase.stays": (
            "Restent, sous le pseudonyme : les sessions (statistiques, comptabilité), le "
            "crédit prépayé, le journal d'audit ; les habilitations sont closes."
        ),
        "erase.invoices": (
            "Les factures et avoirs déjà émis restent tels quels, avec le nom de "
            "l'acheteur (obligation de conservation de dix ans)."
        ),
        "erase.export_first": "Remettez-lui d'abord l'export de ses données s'il le demande.",
        "erase.confirm": "Pour confirmer, tapez l'identifiant du membre ({id})",
        "erase.submit": "Effacer définitivement",
        "erase.back": "Retour à la fiche du membre",
        "erase.done": (
            "Membre effacé : il apparaît désormais comme « {pseudonym} » "
            "({badges} badge(s) retiré(s))."
        ),
        "erase.erased_on": "Membre effacé le {date}.",
        "erase.err.confirm": "L'identifiant tapé ne correspond pas : rien n'a été effacé.",
        "erase.err.done": "Ce membre a déjà été effacé.",
        "erase.err.open_session": (
            "Effacement impossible : une session est en cours sur {machine}. "
            "Terminez-la à la machine d'abord."
        ),
        "erase.err.balance": (
            "Effacement impossible : le crédit prépayé est négatif ({cents} centimes dus). "
            "Régularisez-le d'abord."
        ),
        "erase.err.unbilled": (
            "Effacement impossible : {count} session(s) payante(s) pas encore facturée(s). "
            "Clôturez leur mois d'abord, pour que la facture soit émise à son nom."
        ),
    },
    "en": {
        "title": "Workshop machines",
        "machines": "Machines",
        "recent_sessions": "Recent sessions",
        "state.free": "Free",
        "state.in_use": "In use",
        "state.offline": "Offline",
        "silent_since": "no news since {since}",
        "state.out_of_service": "Out of service",
        "in_use_by": "by {name} since {since}",
        "in_use_since": "since {since}",
        "refusals_count": "{count} message(s) from node {node} refused",
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
        # Accounts and API tokens (gateway/web/auth.py, tokens.py).
        "auth.login.title": "Log in",
        "auth.email": "Email address",
        "auth.password": "Password",
        "auth.login.submit": "Log in",
        "auth.logout": "Log out",
        "auth.account": "My account",
        "auth.bad_credentials": "Wrong email address or password.",
        "auth.locked": "Too many failed attempts: log-in blocked for {minutes} more min.",
        "auth.login_required": "You need to log in.",
        "auth.forbidden": "Access denied: your role does not allow this page.",
        "auth.csrf_failed": (
            "The form expired or was sent from another site: reload the page and try again."
        ),
        "auth.bad_current": "The current password is wrong.",
        "auth.mismatch": "The two new passwords differ.",
        "auth.too_short": "The new password needs at least {n} characters.",
        "account.title": "My account",
        "account.name": "Name",
        "account.roles": "Roles",
        "account.trains": "Trainer for",
        "account.password.title": "Change password",
        "account.password.current": "Current password",
        "account.password.new": "New password (at least {n} characters)",
        "account.password.confirm": "New password again",
        "account.password.submit": "Change password",
        "account.password.done": ("Password changed. Your sessions on other devices are closed."),
        "role.member": "member",
        "role.trainer": "trainer",
        "role.fabmanager": "fabmanager",
        "role.accountant": "accountant",
        "role.admin": "administrator",
        "tokens.title": "API tokens",
        "tokens.intro": (
            "A token lets software (accounting, spreadsheet, script) read the "
            "hub's API. Each token opens only the scopes ticked."
        ),
        "tokens.create": "Create a token",
        "tokens.name": "Name (what it is for)",
        "tokens.scopes": "Scopes",
        "tokens.created": "Token created. Copy it now: it will never be shown again.",
        "tokens.invalid": "Token not created: {error}",
        "tokens.none": "No token yet.",
        "tokens.col.name": "Name",
        "tokens.col.scopes": "Scopes",
        "tokens.col.created": "Created",
        "tokens.col.by": "By",
        "tokens.col.last_used": "Last used",
        "tokens.col.status": "Status",
        "tokens.active": "active",
        "tokens.revoked": "revoked on {date}",
        "tokens.never": "never",
        "tokens.revoke": "Revoke",
        "tokens.config_note": (
            "Tokens written in the hub's configuration file have every "
            "scope and are not listed here."
        ),
        "scope.usage": "usage (minutes and amounts)",
        "scope.invoices": "invoices and closing months",
        "scope.machines": "live machines",
        "scope.sessions": "sessions",
        "scope.jobs": "machine jobs",
        "scope.report": "activity report",
        "scope.members": "members: list, create, one member's data export",
        "scope.metrics": "monitoring metrics (/metrics)",
        "minutes": "{n} min",
        # Activity report (gateway/web/report.py).
        "report.title": "Activity report",
        "report.period": "from {start} to {end}",
        "report.generated": "Generated on {date} · local times ({tz})",
        "report.from": "From",
        "report.to": "Until (excluded)",
        "report.show": "Show",
        "report.csv": "Download as CSV",
        "report.summary": "At a glance",
        "report.kpi.members": "members came",
        "report.kpi.sessions": "sessions",
        "report.kpi.hours": "machine hours",
        "report.kpi.occupancy": "average occupancy",
        "report.kpi.new_members": "new members",
        "report.kpi.certifications": "certifications granted",
        "report.kpi.revenue": "revenue",
        "report.attendance": "Attendance",
        "report.attendance.members_chart": "Distinct members per month, by category",
        "report.attendance.sessions_chart": "Sessions per month, by category",
        "report.attendance.desc": "Busiest month: {month}, {n}. Over the period: {total}.",
        "report.attendance.note": (
            "A member who came in several months counts once over the period: the total is "
            "not the sum of the months."
        ),
        "report.occupancy": "Machine occupancy",
        "report.occupancy.chart": "Machine occupancy during opening hours",
        "report.occupancy.by_month": "Occupancy per month",
        "report.occupancy.note": (
            "Occupancy = session minutes during opening hours ÷ opening minutes of the "
            "period ({hours}). A session running past closing time only counts its part "
            "within opening hours. Exceptional closures (holidays) are unknown to the hub "
            "and count as open."
        ),
        "report.opening_hours": "Opening hours",
        "report.closed": "closed",
        "report.usage": "Hours and revenue per machine",
        "report.usage.chart": "Hours of use per machine, by category",
        "report.usage.desc": "Hours of use: {values}.",
        "report.revenue_na": "not available",
        "report.revenue_na.note": (
            "Revenue not available: the hub does not record session prices yet."
        ),
        "report.new_members": "New members",
        "report.new_members.chart": "New members per month, by category",
        "report.new_members.na": "Not available: the hub does not record when members joined yet.",
        "report.certifications": "Certifications granted",
        "report.certifications.chart": "Certifications granted per machine group, by level",
        "report.certifications.none": "No certification granted in the period.",
        "report.projects": "Usage per project",
        "report.projects.chart": "Hours of use of the {n} most active projects",
        "report.projects.no_project": "No project",
        "report.projects.others": "{n} other projects",
        "report.projects.note": "{with_project} of machine hours belong to a project.",
        "report.method": "Method",
        "report.method.sessions": (
            "Only finished sessions count, each in the month it started and for its whole "
            "length. A member's category is their current one."
        ),
        "report.no_data": "No session in the period.",
        "report.bad_period": "Invalid period: {error}",
        "report.col.month": "Month",
        "report.col.total": "Total",
        "report.col.period": "Period",
        "report.col.members": "Members",
        "report.col.members_short": "Memb.",
        "report.col.sessions_short": "Sess.",
        "report.col.sessions": "Sessions",
        "report.col.hours": "Hours",
        "report.col.busy_hours": "Busy hours",
        "report.col.jobs": "Jobs",
        "report.col.revenue": "Revenue",
        "report.col.occupancy": "Occupancy",
        "report.col.in_hours": "Hours within opening hours",
        "report.col.category": "Category",
        "report.col.group": "Machine group",
        "report.col.level": "Level",
        "report.col.granted": "Granted",
        "report.col.revoked": "Revoked since",
        "report.col.project": "Project",
        "report.col.owner": "Owner",
        "report.all": "All",
        "level.0": "none",
        "level.1": "supervised",
        "level.2": "autonomous",
        "level.3": "trainer",
        "cat.grand_public": "General public",
        "cat.adherent": "Members",
        "cat.professionnel": "Professionals",
        "cat.scolaire": "Schools",
        "cat.association": "Associations",
        "cat.unknown": "Unknown",
        "unit.hours": "{n} h",
        "unit.members": "{n} members",
        "unit.sessions": "{n} sessions",
        "month.1": "Jan",
        "month.2": "Feb",
        "month.3": "Mar",
        "month.4": "Apr",
        "month.5": "May",
        "month.6": "Jun",
        "month.7": "Jul",
        "month.8": "Aug",
        "month.9": "Sep",
        "month.10": "Oct",
        "month.11": "Nov",
        "month.12": "Dec",
        "monthname.1": "January",
        "monthname.2": "February",
        "monthname.3": "March",
        "monthname.4": "April",
        "monthname.5": "May",
        "monthname.6": "June",
        "monthname.7": "July",
        "monthname.8": "August",
        "monthname.9": "September",
        "monthname.10": "October",
        "monthname.11": "November",
        "monthname.12": "December",
        "day.mon": "Monday",
        "day.tue": "Tuesday",
        "day.wed": "Wednesday",
        "day.thu": "Thursday",
        "day.fri": "Friday",
        "day.sat": "Saturday",
        "day.sun": "Sunday",
        # Members, certifications, badges, projects, my page (gateway/web/people.py).
        "nav.label": "Navigation",
        "nav.board": "Machines",
        "nav.me": "My page",
        "nav.projects": "My projects",
        "nav.members": "Members",
        "nav.certify": "Certify",
        "nav.report": "Activity report",
        "nav.tokens": "API tokens",
        "members.title": "Members",
        "members.filter": "Find a member",
        "members.category": "Category",
        "members.status": "Status",
        "members.status.active": "active",
        "members.status.suspended": "suspended",
        "members.membership_end": "Member until",
        "members.badges": "Active badges",
        "members.until": "member until {date}",
        "cert.title": "Certifications",
        "cert.group": "Machine group",
        "cert.level": "Level",
        "cert.by": "Certified by",
        "cert.at": "On",
        "cert.expires": "Expires on",
        "cert.lapses": "Lapses on",
        "cert.state": "State",
        "cert.no_expiry": "no limit",
        "cert.state.live": "valid",
        "cert.state.expired": "expired",
        "cert.state.revoked": "revoked",
        "cert.lapses_help": (
            "“Lapses on”: unless a machine of the group is used by then, the "
            "certification lapses. Every use pushes this date back; the expiry does not move."
        ),
        "cert.none": "No certification.",
        "certify.title": "Certify a member",
        "certify.this_member": "Certify this member",
        "certify.help": (
            "Choose the member, the machine group (for example “Laser cutting”) and "
            "the level, then confirm. The group's machines accept it within seconds."
        ),
        "certify.no_groups": "You train on no machine group.",
        "certify.member": "Member",
        "certify.choose": "— choose —",
        "certify.group": "Machine group",
        "certify.group_help": "The certification covers every machine of the group.",
        "certify.level": "Level",
        "certify.level_help.0": "records a training without giving access",
        "certify.level_help.1": "only while a supervisor is present",
        "certify.level_help.2": "may use the machines alone",
        "certify.level_help.3": "may also certify others",
        "certify.level_fabmanager": "fabmanager only",
        "certify.validity": "Valid for (months)",
        "certify.validity_help": "Defaults to the group's usual length.",
        "certify.note": "Note (optional)",
        "certify.note_placeholder": "e.g. Saturday training, 3 mm plywood",
        "certify.submit": "Certify",
        "certify.done": "{name} is certified level {level} on “{group}” until {until}.",
        "certify.higher_kept": (
            "This member keeps their higher level {level}: revoke the certification to lower it."
        ),
        "certify.err.self": "Nobody may certify themselves.",
        "certify.err.not_your_group": "You do not train on this machine group.",
        "certify.err.trainer_level": (
            "A trainer certifies up to level {max}; level 3 is granted by the fabmanager."
        ),
        "certify.err.member": "Choose a member.",
        "certify.err.group": "Choose a machine group.",
        "certify.err.level": "Choose a level from 0 to 3.",
        "certify.err.validity": "The validity is a number of months between 1 and {max}.",
        "revoke.submit": "Revoke",
        "revoke.confirm": "Revoke the “{group}” certification?",
        "revoke.done": "Certification revoked: the machines refuse it from now on.",
        "revoke.none": "No live certification to revoke.",
        "revoke.err.trainer_level": "A trainer cannot revoke a level-3 certification.",
        "badge.title": "Badges",
        "badge.status.active": "active",
        "badge.status.blocked": "blocked",
        "badge.block": "Block (lost)",
        "badge.block_help": "A blocked badge is refused by every machine within a second.",
        "badge.none": "No badge.",
        "badge.blocked": "Badge {uid} blocked.",
        "badge.err.not_active": "Badge {uid} is not active.",
        "enrol.submit": "Enrol a badge",
        "enrol.help": "then tap the new badge on any machine (30 s).",
        "enrol.pending": "Waiting for a tap on any machine… (until {until})",
        "enrol.attached": "Badge {uid} attached.",
        "enrol.refused": "Badge {uid} refused: {detail}.",
        "enrol.expired": "Expired: no badge was tapped. Try again.",
        "projects.title": "My projects",
        "projects.current": "Current project",
        "projects.current_help": "Your next sessions at the machines count towards this project.",
        "projects.none": "no project",
        "projects.save_current": "Save",
        "projects.empty": "No project yet.",
        "projects.new": "New project",
        "projects.name": "Project name",
        "projects.make_current": "Make it my current project",
        "projects.create": "Create",
        "projects.is_current": "current",
        "projects.created": "Project “{name}” created.",
        "projects.current_set": "Current project saved.",
        "projects.err.name": "A project needs a name ({max} characters at most).",
        "projects.err.not_yours": "This project is not yours.",
        "move.label": "Session's project",
        "move.submit": "Move",
        "move.help": "A session can change project until its month is closed (invoices issued).",
        "move.closed_short": "month closed",
        "move.closed_hint": "The month is closed: the session can no longer change project.",
        "move.done": "Session moved.",
        "move.err.unknown": "Unknown session.",
        "move.err.not_yours": "This session is not yours.",
        "move.err.open": "The session is still running: move it once it has ended.",
        "move.err.project": "Choose a project of the same member.",
        "move.err.closed": (
            "The month {month} is closed (invoices issued): this session can no longer change "
            "project."
        ),
        "me.title": "My page",
        "me.hello": "Hello {name}",
        "me.minutes_month": "machine minutes this month",
        "me.minutes_year": "machine minutes in {year}",
        "me.certifications": "My certifications",
        "me.projects": "My projects",
        "me.manage_projects": "Manage my projects",
        "me.sessions": "Sessions",
        # Invoices, payments, closing (gateway/web/invoices.py, invoice_pdf.html).
        "nav.invoices": "Invoices",
        "invoices.title": "Invoices and credit notes",
        "invoices.open_month": "The month {month} has ended and is not closed yet.",
        "close.link": "Close {period}…",
        "invoices.from": "From",
        "invoices.to": "to",
        "invoices.payer": "Payer",
        "invoices.status": "Status",
        "invoices.status.any": "any",
        "status.paid": "paid",
        "status.part_paid": "part-paid",
        "status.unpaid": "unpaid",
        "status.credit_note": "credit note",
        "invoices.filter": "Filter",
        "invoices.number": "Number",
        "invoices.period": "Month",
        "invoices.issued": "Issued",
        "invoices.total_ttc": "Total incl. VAT",
        "invoices.paid": "Paid",
        "invoices.organisation": "organisation",
        "invoices.count": "{n} document(s)",
        "invoices.due_total": "still due: {amount}",
        "invoices.none": "No document matches.",
        "invoices.journal": "Sales journal from {first} to {last} (CSV)",
        "invoices.err.no_seller": (
            "The seller's details are missing: add an invoicing: section to {file}."
        ),
        "doc.invoice": "Invoice",
        "doc.credit_note": "Credit note",
        "invoice.pdf": "PDF",
        "doc.service_period": "Service period",
        "doc.due_date": "Due date",
        "doc.issue_date": "Issue date",
        "invoice.paid_so_far": "paid {paid}, still due {due}",
        "doc.line": "Description",
        "doc.lines": "Lines",
        "doc.quantity": "Quantity",
        "doc.unit_price": "Unit price excl. VAT",
        "doc.vat_rate": "VAT",
        "doc.amount_ht": "Amount excl. VAT",
        "doc.base_ht": "Taxable amount",
        "doc.vat": "VAT amount",
        "doc.total_ht": "Total excl. VAT",
        "doc.total_vat": "Total VAT",
        "doc.total_ttc": "Total incl. VAT",
        "doc.left_due": "Still due",
        "doc.vat_number": "VAT number",
        "doc.buyer": "Customer",
        "doc.customer_ref": "Customer reference",
        "doc.payment_terms": "Payment terms",
        "doc.transfer": "Bank transfer",
        "doc.reference": "reference",
        "doc.late_penalties": (
            "Late payment incurs penalties at {rate}, without any reminder being needed "
            "(French commercial code, art. L441-10)."
        ),
        "doc.recovery_fee": (
            "Fixed indemnity for recovery costs owed in case of late payment: {amount} "
            "(French commercial code, art. D441-5)."
        ),
        "doc.integrity": "SHA-256 fingerprint of the document:",
        "unit.MIN": "min",
        "unit.C62": "lot",
        "payments.title": "Payments",
        "payments.paid_on": "Date",
        "payments.means": "Means",
        "payments.amount": "Amount (€)",
        "payments.reference": "Reference",
        "payments.note": "Note",
        "payments.by": "Recorded by",
        "payments.none": "No payment recorded.",
        "payments.correction": "Correction (amount taken back)",
        "payments.record": "Record the payment",
        "payments.recorded": "Payment of {amount} recorded on {number}.",
        "payments.err.amount": "Invalid amount: in euros, e.g. 12.50.",
        "payments.err.date": "Invalid date.",
        "payments.err.means": "Unknown means of payment.",
        "payments.err.zero": "A payment of 0 records nothing.",
        "payments.err.note": "A correction must say why (note).",
        "payments.err.future": "A payment cannot be dated in the future.",
        "payments.err.credit_note": "A credit note is not paid.",
        "payments.err.too_much": "This payment would exceed the amount due.",
        "payments.err.below_zero": "A correction cannot make the amount paid negative.",
        "means.card": "card",
        "means.cash": "cash",
        "means.cheque": "cheque",
        "means.transfer": "bank transfer",
        "means.credit": "prepaid credit",
        "means.direct_debit": "direct debit",
        "means.other": "other",
        "close.title": "Closing the month {period}",
        "close.already": "The month {period} is closed.",
        "close.explain": (
            "Closing {period} issues the invoices and credit notes below, numbered and final:"
            " they can never be changed again, only corrected by a credit note."
        ),
        "close.no_seller": (
            "Warning: the configuration has no seller details (invoicing:); no PDF can be "
            "made until they are added."
        ),
        "close.kind": "Document",
        "close.count": "{n} document(s)",
        "close.empty": "No session to bill: closing will issue no document.",
        "close.type": "To confirm, type {period}:",
        "close.submit": "Close {period} for good",
        "close.err.not_ended": "The month {period} has not ended.",
        "close.err.confirm": "Not confirmed: type {period} to close.",
        "close.err.blocked": "Cannot close: {detail}",
        "close.done": "Month {period} closed: {count} document(s) issued.",
        "me.credit": "of prepaid credit",
        "me.invoices": "My invoices",
        "me.no_invoices": "No invoice in your name.",
        "col.amount": "Amount excl. VAT",
        "col.unpriced": "no tariff",
        # Personal data (gateway/web/privacy.py, docs/rgpd.md).
        "privacy.title": "Personal data",
        "privacy.me_help": (
            "Download everything the place keeps about you (a JSON file): identity, "
            "badges, certifications, sessions, invoices, badge taps."
        ),
        "export.mine": "Download my data",
        "export.submit": "Export the member's data",
        "erase.link": "Erase this member…",
        "erase.title": "Erase a member",
        "erase.intro": "Erasure replaces member {id} by a stable pseudonym. It cannot be undone.",
        "erase.goes": (
            "Gone: name, email, badges (the card can be given to someone else), log-in "
            "account, notes, project and file names, badge taps."
        ),
        "erase.stays": (
            "Kept, under the pseudonym: sessions (statistics, accounting), prepaid credit, "
            "the audit log; certifications are ended."
        ),
        "erase.invoices": (
            "Invoices and credit notes already issued stay as they are, with the buyer's "
            "name (they must be kept ten years)."
        ),
        "erase.export_first": "Hand them the export of their data first if they ask for it.",
        "erase.confirm": "To confirm, type the member's id ({id})",
        "erase.submit": "Erase for good",
        "erase.back": "Back to the member's page",
        "erase.done": "Member erased: now shown as “{pseudonym}” ({badges} badge(s) removed).",
        "erase.erased_on": "Member erased on {date}.",
        "erase.err.confirm": "The id typed does not match: nothing was erased.",
        "erase.err.done": "This member is already erased.",
        "erase.err.open_session": (
            "Cannot erase: a session is open on {machine}. End it at the machine first."
        ),
        "erase.err.balance": (
            "Cannot erase: the prepaid credit is negative ({cents} cents owed). Settle it first."
        ),
        "erase.err.unbilled": (
            "Cannot erase: {count} priced session(s) not invoiced yet. Close their month "
            "first, so the invoice is issued in their name."
        ),
    },
}

# The administration pages' strings live beside their pages (gateway/web/i18n_admin.py).
CATALOGUE["fr"].update(i18n_admin.FR)
CATALOGUE["en"].update(i18n_admin.EN)


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
