"""French and English strings of the administration pages (``gateway/web/admin.py``).

Kept apart from ``i18n.py`` so that the pages' many strings read side by side and other
work on the catalogue does not collide with them; ``i18n.CATALOGUE`` merges them.
"""

from __future__ import annotations

_WEEKDAYS_FR = ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche")
_WEEKDAYS_EN = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

FR: dict[str, str] = {
    "nav.admin": "Administration",
    "admin.title": "Administration",
    "admin.save": "Enregistrer",
    "admin.create": "Créer",
    "admin.remove": "Supprimer",
    "admin.saved": "Enregistré.",
    "admin.unchanged": "Rien n'a changé.",
    "admin.error": "Refusé : {message}",
    "admin.err.date": "une date (AAAA-MM-JJ)",
    "admin.err.number": "un nombre entier",
    "admin.err.amount": "un montant en euros, 0 ou plus (12,50)",
    "admin.err.member": "un·e membre de la liste (nom ou identifiant)",
    "admin.err.machine": "une machine connue",
    "admin.picker.placeholder": "Tapez un nom…",
    # members
    "admin.member.new": "Nouveau membre",
    "admin.member.edit": "Modifier",
    "admin.member.id": "Identifiant",
    "admin.member.id_help": "Laisser vide pour un identifiant automatique.",
    "admin.member.name": "Nom",
    "admin.member.email": "Adresse e-mail",
    "admin.member.end_help": "Vide : sans fin. Le lendemain de cette date, les machines refusent.",
    "admin.member.staff": "Équipe (sa présence permet l'usage encadré)",
    "admin.member.staff_help": "Le badge d'un membre de l'équipe compte comme présence.",
    "admin.member.paid_by": "Payé par",
    "admin.member.self": "le membre lui-même",
    "admin.member.suspend": "Suspendre",
    "admin.member.reinstate": "Réactiver",
    "admin.member.created": "Membre créé.",
    "admin.member.suspended": "Membre suspendu : les machines le refusent dès maintenant.",
    "admin.member.active": "Membre réactivé.",
    "admin.badge.uid": "Numéro de badge",
    "admin.badge.uid_help": "Lu sur un lecteur de bureau (hexadécimal, ex. 04A1CE01).",
    "admin.badge.add": "Ajouter le badge",
    "admin.badge.added": "Badge ajouté : il ouvre les machines dès maintenant.",
    "admin.badge.reactivate": "Réactiver",
    "admin.badge.reactivated": "Badge réactivé.",
    "admin.badge.not_blocked": "Ce badge n'était pas bloqué.",
    "admin.badge.or_enrol": "ou",
    # categories
    "admin.categories.title": "Catégories de membres",
    "admin.categories.help": (
        "Les tarifs s'appliquent par catégorie. Le code ne change jamais (les sessions "
        "facturées le gardent) ; une catégorie inactive n'est plus proposée."
    ),
    "admin.categories.code": "Code",
    "admin.categories.label_fr": "Libellé français",
    "admin.categories.label_en": "Libellé anglais",
    "admin.categories.active": "Active",
    "admin.categories.new": "Nouvelle catégorie",
    # machines and groups
    "admin.machines.title": "Machines",
    "admin.machine.new": "Nouvelle machine",
    "admin.machine.id": "Identifiant",
    "admin.machine.name": "Nom",
    "admin.machine.kind": "Type",
    "admin.machine.kind_help": (
        "Laser, CNC, imprimante, brodeuse ou autre : il fixe les règles de session du nœud."
    ),
    "admin.machine.min_level": "Niveau minimum",
    "admin.machine.min_level_help": "1 : usage encadré permis (équipe présente).",
    "admin.machine.certify_level": "Niveau donné à la machine",
    "admin.machine.certify_level_help": "Ce qu'un formateur accorde en habilitant à la machine.",
    "admin.machine.requires_credit": "Crédit prépayé requis",
    "admin.machine.node": "Nœud",
    "admin.machine.node_help": "Le Raspberry Pi qui la pilote (par défaut : son identifiant).",
    "admin.machine.reason": "Raison (affichée à la machine et sur le tableau)",
    "admin.machine.out": "Mettre hors service",
    "admin.machine.back": "Remettre en service",
    "admin.machine.in_service": "En service",
    "admin.machine.unserved": "(retirée du fichier, aucun nœud)",
    "admin.machine.created": "Machine créée.",
    "admin.machine.session_rules_help": (
        "Délai de grâce, inactivité et durée maximale : par défaut ceux du fichier du nœud "
        "(section session) ou du type de machine ; la page de la machine peut les changer."
    ),
    # session rules of one machine
    "admin.rules.title": "Règles de session",
    "admin.rules.help": (
        "Vide : le réglage du nœud (son fichier, sinon le défaut du type de machine). "
        "Une règle changée ici vaut au nœud en moins d'une seconde, pour la session en "
        "cours aussi, sans redémarrage. Durées : 90s, 15m, 1h30m."
    ),
    "admin.rules.save": "Enregistrer les règles",
    "admin.rules.saved": "Règles enregistrées : le nœud les applique dès maintenant.",
    "admin.rules.node_setting": "réglage du nœud",
    "admin.rules.kind_default": "Défaut du type : {value}.",
    "admin.rules.never": "aucun",
    "admin.rules.yes": "oui",
    "admin.rules.no": "non",
    "admin.rules.grace": "Délai de grâce",
    "admin.rules.grace_help": (
        "Courant gardé après le départ du badge, machine à l'arrêt (1 h au plus). "
    ),
    "admin.rules.idle_timeout": "Fin après inactivité",
    "admin.rules.idle_timeout_help": (
        "Une session sans travail se termine après ce délai (24 h au plus). "
    ),
    "admin.rules.max_length": "Durée maximale",
    "admin.rules.max_length_help": (
        "Au-delà, une laser ou CNC en marche est mise en pause puis coupée ; une imprimante "
        "ou une brodeuse finit toujours son travail (24 h au plus)."
    ),
    "admin.rules.cooldown": "Refroidissement",
    "admin.rules.cooldown_help": (
        "Courant gardé après un travail fini après le départ (2 h au plus). "
    ),
    "admin.rules.hold_for": "Pause avant coupure",
    "admin.rules.hold_for_help": (
        "Entre la demande de pause et la coupure, à la durée maximale (10 min au plus). "
    ),
    "admin.rules.progress_every": "Progression toutes les",
    "admin.rules.progress_every_help": (
        "Intervalle des nouvelles de progression d'un travail (1 s à 10 min). "
    ),
    "admin.rules.never_cut_busy": "Ne jamais couper un travail en cours",
    "admin.rules.never_cut_busy_help": "Oui : même à la durée maximale, le travail se finit.",
    "admin.rules.never_cut_busy_fixed": (
        "Toujours oui pour ce type de machine : on ne peut pas le désactiver depuis le web."
    ),
    "admin.rules.err.duration": "{rule} : une durée comme 90s, 15m ou 1h30m",
    "admin.rules.err.bounds": "{rule} : de {lo} à {hi}",
    "admin.rules.err.flag": "réglage du nœud, oui ou non",
    "admin.rules.err.never_cut": (
        "Une machine de type {kind} ne coupe jamais un travail en cours : "
        "cela ne se désactive pas depuis le web."
    ),
    "admin.machine.out_done": "Machine hors service.",
    "admin.groups.title": "Groupes d'habilitation",
    "admin.groups.help": "Une habilitation vaut pour toutes les machines de son groupe.",
    "admin.groups.id": "Identifiant",
    "admin.groups.name": "Nom",
    "admin.groups.validity": "Validité (mois)",
    "admin.groups.lapse": "Caduque sans usage après (mois)",
    "admin.groups.lapse_help": "Vide : jamais.",
    "admin.groups.new": "Nouveau groupe",
    # hours
    "admin.hours.title": "Horaires et fermetures",
    "admin.hours.help": (
        "Créneaux d'ouverture par jour (14:00-18:00, 19:00-22:00). Ils bornent la présence "
        "de l'équipe, donc l'usage encadré ; un jour de fermeture n'a aucun créneau."
    ),
    "admin.hours.err.slot": "« {slot} » n'est pas un créneau HH:MM-HH:MM",
    "admin.closures.title": "Fermetures",
    "admin.closures.none": "Aucune fermeture prévue.",
    "admin.closures.first": "Premier jour",
    "admin.closures.last": "Dernier jour (inclus)",
    "admin.closures.label": "Motif",
    "admin.closures.add": "Ajouter la fermeture",
    "admin.closure.added": "Fermeture ajoutée.",
    "admin.closure.removed": "Fermeture supprimée.",
    "admin.closure.none": "Fermeture inconnue.",
    # tariffs
    "admin.tariffs.title": "Tarifs",
    "admin.tariffs.help": (
        "Une session est facturée au tarif en vigueur à son début : pour changer les prix à "
        "partir d'une date, ajoutez un tarif daté. Corriger un tarif re-facture les sessions "
        "qu'il concerne (avoir puis nouvelle facture pour un mois clos)."
    ),
    "admin.tariffs.none": "Aucun tarif : les sessions sont gratuites.",
    "admin.tariff.new": "Nouveau tarif",
    "admin.tariff.edit": "Modifier le tarif",
    "admin.tariff.edit_help": "Les sessions déjà tarifées par ce tarif seront recalculées.",
    "admin.tariff.name": "Nom",
    "admin.tariff.valid_from": "En vigueur à partir du",
    "admin.tariff.valid_from_help": "Une date (minuit, heure locale) ou 2027-01-01T08:00+01:00.",
    "admin.tariff.scope": "Machines",
    "admin.tariff.machines": "Machines",
    "admin.tariff.groups": "ou groupes",
    "admin.tariff.scope_help": "Rien de choisi : toutes les machines.",
    "admin.tariff.categories_help": "Aucune case : toutes les catégories.",
    "admin.tariff.all_machines": "toutes",
    "admin.tariff.all_categories": "toutes",
    "admin.tariff.mode": "Prix",
    "admin.tariff.mode_rate": "un prix par minute",
    "admin.tariff.mode_split": "en marche / à l'arrêt",
    "admin.tariff.rate": "Prix par minute",
    "admin.tariff.busy_rate": "Minute en marche",
    "admin.tariff.idle_rate": "Minute à l'arrêt",
    "admin.tariff.startup": "Mise en route",
    "admin.tariff.minimum": "Minimum",
    "admin.tariff.unit": "Tranche",
    "admin.tariff.free_under": "Gratuit en dessous de",
    "admin.tariff.material": "Matière",
    "admin.tariff.vat": "TVA",
    "admin.tariff.from_file": "(fichier)",
    "admin.tariff.repriced": "Enregistré : {n} session(s) recalculée(s), écart {delta}.",
    "admin.preview.title": "Simuler un prix",
    "admin.preview.help": (
        "Ce que coûterait une session, par les mêmes règles que la facturation : le tarif "
        "choisi (le plus précis, puis le plus récent) et le détail imprimé sur la facture."
    ),
    "admin.preview.at": "Début de la session",
    "admin.preview.minutes": "Durée (minutes)",
    "admin.preview.busy": "dont en marche (minutes, vide : toute la durée)",
    "admin.preview.grams": "Matière (grammes)",
    "admin.preview.submit": "Calculer",
    "admin.preview.tariff": "Tarif appliqué : {name}",
    "admin.preview.ht": "HT",
    "admin.preview.ttc": "TTC",
    "admin.preview.minutes_billed": "{n} minute(s) facturée(s).",
    # organisations
    "admin.orgs.title": "Organisations",
    "admin.orgs.help": (
        "Écoles, entreprises et associations qui paient l'usage de leurs membres : les "
        "sessions d'un membre rattaché leur sont facturées."
    ),
    "admin.orgs.none": "Aucune organisation.",
    "admin.org.new": "Nouvelle organisation",
    "admin.org.id": "Identifiant",
    "admin.org.name": "Nom",
    "admin.org.kind": "Type",
    "admin.org.kind.school": "école",
    "admin.org.kind.company": "entreprise",
    "admin.org.kind.association": "association",
    "admin.org.kind.other": "autre",
    "admin.org.address": "Adresse",
    "admin.org.postcode": "Code postal",
    "admin.org.city": "Ville",
    "admin.org.country": "Pays (code à deux lettres)",
    "admin.org.vat_number": "N° de TVA intracommunautaire",
    "admin.org.email": "E-mail de facturation",
    "admin.org.members": "Membres dont elle paie l'usage",
    "admin.org.no_members": "Aucun membre rattaché.",
    "admin.org.attach": "Rattacher",
    "admin.org.detach": "Détacher",
    "admin.org.attached": "{name} est rattaché·e : ses prochaines sessions lui sont facturées.",
    "admin.org.detached": "{name} est détaché·e.",
    "admin.org.not_paid": "ce membre n'est pas rattaché à cette organisation",
    # accounts
    "admin.accounts.title": "Connexions et rôles",
    "admin.accounts.help": (
        "Une connexion est celle d'un membre ; les rôles s'ajoutent à « membre ». "
        "Un formateur l'est pour un groupe."
    ),
    "admin.accounts.last_login": "Dernière connexion",
    "admin.accounts.grant": "Donner le rôle",
    "admin.accounts.revoke": "Retirer",
    "admin.accounts.member_only": "membre",
    "admin.accounts.no_password": "(pas de mot de passe)",
    "admin.accounts.new": "Nouvelle connexion",
    "admin.accounts.email_help": "Vide : l'adresse de la fiche du membre.",
    "admin.accounts.password_help": "12 caractères au moins ; vide : à fixer plus tard.",
    "admin.account.created": "Connexion créée.",
    "admin.account.password": "Mot de passe enregistré.",
    "admin.role.granted": "Rôle donné.",
    "admin.role.revoked": "Rôle retiré.",
    # credit
    "admin.credit.title": "Crédit prépayé",
    "admin.credit.help": (
        "Un rechargement vaut tout de suite aux machines à crédit ; un montant négatif "
        "corrige une erreur (le registre ne s'efface pas)."
    ),
    "admin.credit.amount": "Montant",
    "admin.credit.amount_help": "12,50 ; -5 pour une correction.",
    "admin.credit.note": "Note (reçu, moyen de paiement)",
    "admin.credit.submit": "Créditer",
    "admin.credit.done": "Crédité : nouveau solde {balance}.",
    "admin.credit.balance": "Solde",
    "admin.credit.none": "Aucun crédit enregistré.",
    **{f"weekday.{d}": n for d, n in zip(_DAYS, _WEEKDAYS_FR, strict=True)},
}

EN: dict[str, str] = {
    "nav.admin": "Administration",
    "admin.title": "Administration",
    "admin.save": "Save",
    "admin.create": "Create",
    "admin.remove": "Remove",
    "admin.saved": "Saved.",
    "admin.unchanged": "Nothing changed.",
    "admin.error": "Refused: {message}",
    "admin.err.date": "a date (YYYY-MM-DD)",
    "admin.err.number": "a whole number",
    "admin.err.amount": "an amount in euros, 0 or more (12.50)",
    "admin.err.member": "a member from the list (name or id)",
    "admin.err.machine": "a known machine",
    "admin.picker.placeholder": "Type a name…",
    "admin.member.new": "New member",
    "admin.member.edit": "Edit",
    "admin.member.id": "Id",
    "admin.member.id_help": "Leave empty for an id made for you.",
    "admin.member.name": "Name",
    "admin.member.email": "E-mail address",
    "admin.member.end_help": "Empty: no end. The day after this date, machines refuse.",
    "admin.member.staff": "Staff (their presence allows supervised use)",
    "admin.member.staff_help": "A staff member's badge counts as presence.",
    "admin.member.paid_by": "Paid by",
    "admin.member.self": "the member",
    "admin.member.suspend": "Suspend",
    "admin.member.reinstate": "Reinstate",
    "admin.member.created": "Member created.",
    "admin.member.suspended": "Member suspended: the machines refuse them from now on.",
    "admin.member.active": "Member reinstated.",
    "admin.badge.uid": "Badge number",
    "admin.badge.uid_help": "Read on a desk reader (hexadecimal, e.g. 04A1CE01).",
    "admin.badge.add": "Add the badge",
    "admin.badge.added": "Badge added: it opens machines from now on.",
    "admin.badge.reactivate": "Reactivate",
    "admin.badge.reactivated": "Badge reactivated.",
    "admin.badge.not_blocked": "This badge was not blocked.",
    "admin.badge.or_enrol": "or",
    "admin.categories.title": "Member categories",
    "admin.categories.help": (
        "Tariffs apply per category. A code never changes (billed sessions keep it); an "
        "inactive category is no longer offered."
    ),
    "admin.categories.code": "Code",
    "admin.categories.label_fr": "French label",
    "admin.categories.label_en": "English label",
    "admin.categories.active": "Active",
    "admin.categories.new": "New category",
    "admin.machines.title": "Machines",
    "admin.machine.new": "New machine",
    "admin.machine.id": "Id",
    "admin.machine.name": "Name",
    "admin.machine.kind": "Kind",
    "admin.machine.kind_help": (
        "Laser, CNC, printer, embroidery or other: it sets the node's session rules."
    ),
    "admin.machine.min_level": "Minimum level",
    "admin.machine.min_level_help": "1: supervised use allowed (staff present).",
    "admin.machine.certify_level": "Level granted at the machine",
    "admin.machine.certify_level_help": "What a trainer grants when certifying at the machine.",
    "admin.machine.requires_credit": "Prepaid credit required",
    "admin.machine.node": "Node",
    "admin.machine.node_help": "The Raspberry Pi that drives it (default: its id).",
    "admin.machine.reason": "Reason (shown at the machine and on the board)",
    "admin.machine.out": "Put out of service",
    "admin.machine.back": "Back in service",
    "admin.machine.in_service": "In service",
    "admin.machine.unserved": "(removed from the file, no node)",
    "admin.machine.created": "Machine created.",
    "admin.machine.session_rules_help": (
        "Grace period, idle timeout and maximum length: by default the node file's "
        "(session section) or the machine kind's; the machine's page can change them."
    ),
    # session rules of one machine
    "admin.rules.title": "Session rules",
    "admin.rules.help": (
        "Empty: the node's setting (its file, else the machine kind's default). A rule "
        "changed here applies at the node within a second, to the session in progress "
        "too, with no restart. Durations: 90s, 15m, 1h30m."
    ),
    "admin.rules.save": "Save the rules",
    "admin.rules.saved": "Rules saved: the node applies them from now on.",
    "admin.rules.node_setting": "node's setting",
    "admin.rules.kind_default": "Kind's default: {value}.",
    "admin.rules.never": "none",
    "admin.rules.yes": "yes",
    "admin.rules.no": "no",
    "admin.rules.grace": "Grace period",
    "admin.rules.grace_help": "Power kept after a badge-out on an idle machine (1 h at most).",
    "admin.rules.idle_timeout": "Idle timeout",
    "admin.rules.idle_timeout_help": "A session with no work ends after this long (24 h at most).",
    "admin.rules.max_length": "Maximum length",
    "admin.rules.max_length_help": (
        "Past it, a running laser or CNC is held then switched off; a printer or an "
        "embroidery machine always finishes its job (24 h at most)."
    ),
    "admin.rules.cooldown": "Cool-down",
    "admin.rules.cooldown_help": (
        "Power kept after a job that outlived the badge-out (2 h at most). "
    ),
    "admin.rules.hold_for": "Hold before power-off",
    "admin.rules.hold_for_help": (
        "Between asking to hold and switching off, at the maximum length (10 min at most)."
    ),
    "admin.rules.progress_every": "Progress every",
    "admin.rules.progress_every_help": "How often a job's progress is reported (1 s to 10 min).",
    "admin.rules.never_cut_busy": "Never cut a job in progress",
    "admin.rules.never_cut_busy_help": "Yes: even at the maximum length, the job finishes.",
    "admin.rules.never_cut_busy_fixed": (
        "Always yes for this kind of machine: it cannot be turned off from the web."
    ),
    "admin.rules.err.duration": "{rule}: a duration such as 90s, 15m or 1h30m",
    "admin.rules.err.bounds": "{rule}: from {lo} to {hi}",
    "admin.rules.err.flag": "node's setting, yes or no",
    "admin.rules.err.never_cut": (
        "A machine of kind {kind} never cuts a job in progress: "
        "this cannot be turned off from the web."
    ),
    "admin.machine.out_done": "Machine out of service.",
    "admin.groups.title": "Certification groups",
    "admin.groups.help": "A certification is valid on every machine of its group.",
    "admin.groups.id": "Id",
    "admin.groups.name": "Name",
    "admin.groups.validity": "Validity (months)",
    "admin.groups.lapse": "Lapses without use after (months)",
    "admin.groups.lapse_help": "Empty: never.",
    "admin.groups.new": "New group",
    "admin.hours.title": "Opening hours and closures",
    "admin.hours.help": (
        "Opening slots per day (14:00-18:00, 19:00-22:00). They bound staff presence, hence "
        "supervised use; a closed day has no slot."
    ),
    "admin.hours.err.slot": "“{slot}” is not an HH:MM-HH:MM slot",
    "admin.closures.title": "Closures",
    "admin.closures.none": "No closure planned.",
    "admin.closures.first": "First day",
    "admin.closures.last": "Last day (included)",
    "admin.closures.label": "Reason",
    "admin.closures.add": "Add the closure",
    "admin.closure.added": "Closure added.",
    "admin.closure.removed": "Closure removed.",
    "admin.closure.none": "Unknown closure.",
    "admin.tariffs.title": "Tariffs",
    "admin.tariffs.help": (
        "A session is priced by the tariff in force when it started: to change prices from "
        "a date on, add a dated tariff. Correcting a tariff re-prices the sessions it "
        "priced (a credit note and a new invoice for a closed month)."
    ),
    "admin.tariffs.none": "No tariff: sessions are free.",
    "admin.tariff.new": "New tariff",
    "admin.tariff.edit": "Edit the tariff",
    "admin.tariff.edit_help": "Sessions this tariff already priced will be re-priced.",
    "admin.tariff.name": "Name",
    "admin.tariff.valid_from": "In force from",
    "admin.tariff.valid_from_help": "A date (local midnight) or 2027-01-01T08:00+01:00.",
    "admin.tariff.scope": "Machines",
    "admin.tariff.machines": "Machines",
    "admin.tariff.groups": "or groups",
    "admin.tariff.scope_help": "None chosen: every machine.",
    "admin.tariff.categories_help": "No box ticked: every category.",
    "admin.tariff.all_machines": "all",
    "admin.tariff.all_categories": "all",
    "admin.tariff.mode": "Price",
    "admin.tariff.mode_rate": "one price per minute",
    "admin.tariff.mode_split": "busy / idle",
    "admin.tariff.rate": "Price per minute",
    "admin.tariff.busy_rate": "Busy minute",
    "admin.tariff.idle_rate": "Idle minute",
    "admin.tariff.startup": "Start-up",
    "admin.tariff.minimum": "Minimum",
    "admin.tariff.unit": "Step",
    "admin.tariff.free_under": "Free under",
    "admin.tariff.material": "Material",
    "admin.tariff.vat": "VAT",
    "admin.tariff.from_file": "(file)",
    "admin.tariff.repriced": "Saved: {n} session(s) re-priced, difference {delta}.",
    "admin.preview.title": "Preview a price",
    "admin.preview.help": (
        "What a session would cost, by the billing's own rules: the tariff chosen (the most "
        "specific, then the latest) and the line the invoice prints."
    ),
    "admin.preview.at": "Session start",
    "admin.preview.minutes": "Length (minutes)",
    "admin.preview.busy": "of which busy (minutes, empty: all of it)",
    "admin.preview.grams": "Material (grams)",
    "admin.preview.submit": "Compute",
    "admin.preview.tariff": "Tariff applied: {name}",
    "admin.preview.ht": "before VAT",
    "admin.preview.ttc": "with VAT",
    "admin.preview.minutes_billed": "{n} minute(s) billed.",
    "admin.orgs.title": "Organisations",
    "admin.orgs.help": (
        "Schools, companies and associations that pay for their members' use: a member's "
        "sessions are invoiced to the organisation they are attached to."
    ),
    "admin.orgs.none": "No organisation.",
    "admin.org.new": "New organisation",
    "admin.org.id": "Id",
    "admin.org.name": "Name",
    "admin.org.kind": "Kind",
    "admin.org.kind.school": "school",
    "admin.org.kind.company": "company",
    "admin.org.kind.association": "association",
    "admin.org.kind.other": "other",
    "admin.org.address": "Address",
    "admin.org.postcode": "Postcode",
    "admin.org.city": "City",
    "admin.org.country": "Country (two-letter code)",
    "admin.org.vat_number": "VAT number",
    "admin.org.email": "Invoice e-mail",
    "admin.org.members": "Members it pays for",
    "admin.org.no_members": "No member attached.",
    "admin.org.attach": "Attach",
    "admin.org.detach": "Detach",
    "admin.org.attached": "{name} is attached: their next sessions are invoiced to it.",
    "admin.org.detached": "{name} is detached.",
    "admin.org.not_paid": "this member is not attached to this organisation",
    "admin.accounts.title": "Log-ins and roles",
    "admin.accounts.help": (
        "A log-in is a member's; roles come on top of “member”. A trainer trains one group."
    ),
    "admin.accounts.last_login": "Last log-in",
    "admin.accounts.grant": "Grant the role",
    "admin.accounts.revoke": "Revoke",
    "admin.accounts.member_only": "member",
    "admin.accounts.no_password": "(no password)",
    "admin.accounts.new": "New log-in",
    "admin.accounts.email_help": "Empty: the address on the member's record.",
    "admin.accounts.password_help": "At least 12 characters; empty: set it later.",
    "admin.account.created": "Log-in created.",
    "admin.account.password": "Password saved.",
    "admin.role.granted": "Role granted.",
    "admin.role.revoked": "Role revoked.",
    "admin.credit.title": "Prepaid credit",
    "admin.credit.help": (
        "A top-up counts at once on machines that need credit; a negative amount corrects "
        "a mistake (the ledger is never erased)."
    ),
    "admin.credit.amount": "Amount",
    "admin.credit.amount_help": "12.50; -5 for a correction.",
    "admin.credit.note": "Note (receipt, means of payment)",
    "admin.credit.submit": "Credit",
    "admin.credit.done": "Credited: new balance {balance}.",
    "admin.credit.balance": "Balance",
    "admin.credit.none": "No credit recorded.",
    **{f"weekday.{d}": n for d, n in zip(_DAYS, _WEEKDAYS_EN, strict=True)},
}
