"""French and English texts of the node: mails, errors and pages.

Every sentence a person reads comes from these catalogues, keyed by a short
name; templates and code never hold the text itself.
"""

from __future__ import annotations

from collections.abc import Iterable

LANGUAGES = ("fr", "en")
DEFAULT = "fr"

MESSAGES: dict[str, dict[str, str]] = {
    "en": {
        "mail.confirm.subject": "Confirm your signature: {title}",
        "mail.confirm.body": (
            "Hello {name},\n\n"
            'You asked to sign the petition "{title}" on {node}.\n\n'
            "To confirm, open this link and press the button on the page:\n{link}\n\n"
            "Until you do, your signature is not counted. If you did not ask for this, ignore "
            "this message: your details will be deleted in {hours} hours.\n\n"
            "The same link later shows your receipt and lets you withdraw your signature.\n\n"
            "Your name and email stay on {node}, encrypted; the public log holds only an "
            "anonymous entry.\n"
        ),
        "mail.already.subject": "You already signed: {title}",
        "mail.already.body": (
            "Hello,\n\n"
            'Someone (probably you) tried to sign the petition "{title}" on {node} with this '
            "email address, which has already signed it. Nothing was added.\n\n"
            "Your personal link, to see your receipt or withdraw, is now:\n{link}\n"
            "(earlier links no longer work).\n"
        ),
        "mail.privacy.subject": "Your data on {node}",
        "mail.privacy.body": (
            "Hello,\n\n"
            "You asked what {node} holds about this email address. This link, valid for 24 "
            "hours, lets you download it or have it erased:\n{link}\n\n"
            "If you did not ask for this, ignore this message.\n"
        ),
        "error.closed": "This petition is closed.",
        "error.not_found": "Not found.",
        "error.rate_limited": "Too many requests. Please try again later.",
        "error.expired": "This link has expired. Please sign again.",
        "error.invalid": "Please check the form: {field}.",
        # pages (fedpetition.node.routes.pages and its templates)
        "lang.name": "English",
        "format.thousands": ",",
        "format.date": "{year}-{month:02d}-{day:02d}",
        "format.datetime": "{year}-{month:02d}-{day:02d} {hour:02d}:{minute:02d} UTC",
        "site.skip": "Skip to content",
        "site.nav": "Main menu",
        "site.language": "Language",
        "site.petitions": "Petitions",
        "site.privacy": "Your data",
        "site.organisers": "Organisers",
        "site.footer": (
            "{node} is a fedpetition node: its counts are published in logs anyone can verify."
        ),
        "list.title": "Petitions",
        "list.intro": (
            "Petitions hosted on {node}. Every signature is confirmed by email and counted in a "
            "public log that anyone can check."
        ),
        "list.count": "Signatures: {count}",
        "list.empty": "No petition yet.",
        "petition.open": "Open",
        "petition.closed": "Closed",
        "petition.open_until": "Open until {deadline}.",
        "petition.closed_since": "This petition no longer takes signatures.",
        "petition.addressee": "Addressed to:",
        "petition.count_heading": "Count",
        "petition.count_label": "Signatures counted on {node}, as its public log proves",
        "petition.next_threshold": "Next step: {count} of {threshold} signatures",
        "petition.all_thresholds": "Every step set by the organisers has been reached.",
        "petition.reached": "Step of {threshold} reached on {date}",
        "petition.text_heading": "The petition",
        "petition.not_translated": (
            "This petition has no version in your language: it is shown in its own language."
        ),
        "sign.heading": "Sign this petition",
        "sign.name": "Your name",
        "sign.name_hint": "As it should appear if you agree to give it to the addressee.",
        "sign.email": "Your email address",
        "sign.email_hint": "We send you a link to confirm your signature. Each address signs once.",
        "sign.region": "Region (optional)",
        "sign.region_hint": (
            "An ISO 3166 code such as FR or FR-IDF. It is published with your anonymous entry."
        ),
        "sign.consents": "Your choices (optional)",
        "sign.updates": "Send me news about this petition.",
        "sign.addressee": "Give my name to the addressee ({addressee}).",
        "sign.privacy_note": (
            "Your name and email address stay on {node}, encrypted. The public log holds only an "
            "anonymous entry."
        ),
        "sign.privacy_link": "How your data is handled",
        "sign.submit": "Sign",
        "sign.closed": "This petition is closed: it no longer takes signatures.",
        "chart.heading": "Signatures over time",
        "chart.title": "Number of signatures over time",
        "chart.summary": (
            "From {start} to {end}, the count went from 0 to {count} (highest: {peak})."
        ),
        "chart.data": "The hourly counts as open data (JSON)",
        "chart.empty": "No signature has been counted yet.",
        "regions.heading": "Signatures by region",
        "regions.region": "Region",
        "regions.count": "Signatures",
        "regions.none": "Not given",
        "versions.heading": "Versions of the text",
        "versions.intro": (
            "Organisers may amend the text: every version stays public, and signatures keep "
            "counting."
        ),
        "versions.item": "Version {number} of {date}",
        "versions.current": "current",
        "versions.page_title": "Version {number}",
        "versions.notice": "You are reading version {number} of {total}.",
        "versions.to_current": "Go to the current petition",
        "versions.created": "Published",
        "versions.deadline": "Deadline",
        "versions.signed_document": "This version as a signed document",
        "verify.heading": "Check the count yourself",
        "verify.intro": (
            "{node} publishes every entry of this petition's log, signed: anyone can count again."
        ),
        "verify.bundle": "Download the bundle (log, checkpoints and texts)",
        "verify.how": "To verify it, install fedpetition and run:",
        "verify.federated": (
            "The count spans the logs of several nodes. A verifier fetches them all from the "
            "live nodes and recounts; install fedpetition and run:"
        ),
        "federated.label": (
            "Signatures counted across the {hosts} nodes hosting this petition (a person who "
            "signed on two nodes counts once), recounted by {node} from their public logs"
        ),
        "federated.pending": "not computed yet",
        "federated.heading": "Nodes hosting this petition",
        "federated.node": "Node",
        "federated.counted": "Counted there",
        "federated.status": "Its log",
        "federated.witnessed": "checked, witnessed by {witnesses}",
        "federated.unchecked": "not checked yet",
        "federated.problem": "not counted: {problem}",
        "sign.not_host": (
            "{node} has asked to host this petition: it takes signatures once the node that "
            "started the petition admits it."
        ),
        "sent.heading": "Check your mail",
        "sent.sign": (
            "If this address can sign this petition, we have sent it a message with a link. Open "
            "it to confirm your signature: until then, it is not counted."
        ),
        "sent.privacy": (
            "We have sent this address a link, valid for 24 hours, to download or erase the data "
            "this node holds about it."
        ),
        "sent.spam": "Nothing after a few minutes? Look in your spam folder.",
        "sent.back": "Back",
        "signer.title": "Your signature",
        "signer.petition": "Petition:",
        "signer.state_heading": "Where it stands",
        "signer.pending": (
            "You have not confirmed yet: your signature is not counted. Press the button to "
            "confirm it."
        ),
        "signer.confirm": "Confirm my signature",
        "signer.expired": (
            "This confirmation link has expired, and your details are deleted. You can sign again."
        ),
        "signer.sign_again": "Sign again",
        "signer.confirmed": (
            "Confirmed. Your signature is being added to the public log; this page updates by "
            "itself."
        ),
        "signer.counted": "Thank you: your signature is counted.",
        "signer.index": "Its position in the public log: {index}.",
        "signer.withdrawing": (
            "Your withdrawal is being added to the public log; this page updates by itself."
        ),
        "signer.withdrawn": "You have withdrawn your signature: it is no longer counted.",
        "signer.receipt_heading": "Your receipt",
        "signer.receipt_intro": (
            "The receipt proves that your entry is in the public log. It holds your name and email "
            "address: keep it to yourself."
        ),
        "signer.receipt_download": "Download my receipt",
        "signer.receipt_how": "To check it, install fedpetition and run:",
        "signer.withdraw_heading": "Withdraw your signature",
        "signer.withdraw_intro": (
            "You can withdraw at any time: a withdrawal entry is added to the public log and the "
            "count goes down by one."
        ),
        "signer.withdraw": "Withdraw my signature…",
        "signer.data_heading": "What is stored, and where",
        "signer.data_node": "On {node}, encrypted and never published:",
        "signer.name": "Name",
        "signer.email": "Email address",
        "signer.region": "The region you gave, {region}, is published with your anonymous entry.",
        "signer.data_log": (
            "The public log holds only an anonymous entry: no name, no email address, nothing that "
            "others can link to you."
        ),
        "signer.data_link": "You can download or erase your data at any time:",
        "signer.data_privacy": "your data",
        "confirm.cancel": "No, go back",
        "confirm.withdraw.heading": "Withdraw your signature?",
        "confirm.withdraw.text": (
            "Your signature will no longer be counted. A withdrawal entry is added to the public "
            "log. You can sign again later."
        ),
        "confirm.withdraw.button": "Yes, withdraw my signature",
        "confirm.erase.heading": "Erase your data?",
        "confirm.erase.text": (
            "Your name, email address and personal links are deleted from this node, for every "
            "petition. Anonymous entries already in the public logs stay and keep counting: no one "
            "can link them to you any more, and you can no longer withdraw them. To take a "
            "signature off the count, withdraw it first."
        ),
        "confirm.erase.button": "Yes, erase my data",
        "confirm.close.heading": "Close this petition?",
        "confirm.close.text": (
            "It will take no more signatures, and this cannot be undone. Its log and count stay "
            "public."
        ),
        "confirm.close.button": "Yes, close it",
        "erased.heading": "Data erased",
        "erased.text": "Signatures erased from this node: {count}.",
        "privacy.title": "Your data",
        "privacy.stored_heading": "What this node stores",
        "privacy.stored_node": (
            "When you sign, {node} keeps your name, your email address and your choices, "
            "encrypted. They are never published."
        ),
        "privacy.stored_log": (
            "The public log of each petition holds only an anonymous entry per signature, with the "
            "region if you gave one."
        ),
        "privacy.stored_pending": "A signature not confirmed within {hours} hours is deleted.",
        "privacy.stored_retention": (
            "Names and email addresses are deleted {days} days after the petition closes."
        ),
        "privacy.stored_cookies": (
            "No tracking: the only cookies are your language, a security token for forms and, for "
            "organisers, their session."
        ),
        "privacy.request_heading": "Download or erase your data",
        "privacy.request_intro": (
            "Enter your email address: we send it a link, valid for 24 hours, to download your "
            "data or have it erased."
        ),
        "privacy.email": "Your email address",
        "privacy.submit": "Send me the link",
        "privacy.data_title": "Your data on this node",
        "privacy.data_intro": "Signatures that {node} holds for the address",
        "privacy.petition": "Petition",
        "privacy.status": "State",
        "privacy.since": "Signed on",
        "privacy.nothing": "This node holds no signature for this address.",
        "privacy.log_note": (
            "The public logs hold only anonymous entries: no name, no email address."
        ),
        "privacy.export_heading": "Download",
        "privacy.export": "Download my data (JSON)",
        "privacy.erase_heading": "Erase",
        "privacy.erase_intro": (
            "Erasing deletes your name and email address from this node. To take a signature off "
            "the count, first withdraw it with the link in your confirmation mail."
        ),
        "privacy.erase": "Erase my data…",
        "status.pending": "waiting for confirmation",
        "status.confirmed": "confirmed, being added to the log",
        "status.counted": "counted",
        "status.withdrawing": "withdrawal being added to the log",
        "status.withdrawn": "withdrawn",
        "form.has_errors": "Some fields need correcting: see the messages below.",
        "form.error.name": "Enter your name (at most 200 characters).",
        "form.error.email": "Enter a valid email address, such as name@example.org.",
        "form.error.region": "Enter an ISO 3166 code such as FR or FR-IDF, or leave this empty.",
        "form.error.slug": (
            "Use 1 to 63 lower-case letters, digits and hyphens, starting with a letter or a digit."
        ),
        "form.error.slug_taken": "This address is already taken: choose another one.",
        "form.error.languages": "Choose at least one language.",
        "form.error.title": "Give a title in this language (at most 300 characters).",
        "form.error.text": "Give the text in this language.",
        "form.error.addressee": "Say to whom the petition is addressed (at most 300 characters).",
        "form.error.deadline": "Give a date and time in the future (UTC).",
        "form.error.thresholds": (
            "Give whole numbers above zero, increasing, separated by commas, or leave this empty."
        ),
        "form.error.login": "Wrong name or password.",
        "form.error.invalid": "This value is not accepted.",
        "error.csrf": (
            "This form has expired or did not come from this site. Go back, reload the page and "
            "try again."
        ),
        "error.not_yet": (
            "Your receipt is not ready yet: your entry is being added to the log. Try again in a "
            "few seconds."
        ),
        "error.unsupported_media_type": "This request did not come from one of this site's forms.",
        "error.method_not_allowed": "This page cannot be used this way.",
        "error.too_large": "What you sent is too large.",
        "page.error.title": "Error {status}",
        "page.error.generic": "This request could not be completed.",
        "page.error.home": "Back to the petitions",
        "admin.login_title": "Organiser login",
        "admin.name": "Name",
        "admin.password": "Password",
        "admin.login": "Log in",
        "admin.logout": "Log out",
        "admin.logged_in": "Logged in as {name}",
        "admin.title": "Manage petitions",
        "admin.new": "New petition",
        "admin.petition": "Petition",
        "admin.state": "State",
        "admin.count": "Signatures",
        "admin.deadline": "Deadline",
        "admin.new_title": "New petition",
        "admin.edit_title": "Edit the petition",
        "admin.public_page": "public page",
        "admin.saved": "Version {number} is published.",
        "admin.unchanged": "Nothing changed: no new version was published.",
        "admin.edit_intro": (
            "Saving publishes a new version of the text: earlier versions stay public, and "
            "signatures keep counting."
        ),
        "admin.slug": "Address of the petition",
        "admin.slug_hint": (
            "Used in links: lower-case letters, digits and hyphens, such as save-the-park. It "
            "cannot change later."
        ),
        "admin.languages": "Languages",
        "admin.texts_in": "Text ({language_name})",
        "admin.texts_hint": (
            "Needed only if this language is chosen above. Blank lines separate paragraphs."
        ),
        "admin.title_field": "Title",
        "admin.text_field": "Text",
        "admin.addressee": "Addressed to",
        "admin.deadline_field": "Deadline (UTC)",
        "admin.deadline_hint": "Date and time, in UTC, after which no one can sign.",
        "admin.thresholds": "Steps (optional)",
        "admin.thresholds_hint": (
            "Signature counts to reach, separated by commas, such as 1000, 10000, 100000."
        ),
        "admin.create": "Create the petition",
        "admin.save": "Publish a new version",
        "admin.close_heading": "Close the petition",
        "admin.close_intro": "Closing stops signatures before the deadline. It cannot be undone.",
        "admin.close": "Close the petition…",
        "check.link": "Verify this count now, step by step",
        "check.title": "Verify the count",
        "check.intro": (
            "{node} recounts this petition from what every hosting node publishes, with the "
            "same steps as the fedpetition verifier: signatures of the texts and checkpoints, "
            "the Merkle trees, the rules of each log, then the federated count. Nothing here "
            "is taken on trust from {node}'s own figures."
        ),
        "check.running": "The verification is running. This page reloads by itself.",
        "check.ok": "Verified: {total} signatures. Every step passed.",
        "check.failed": "Not verified: a step failed (below, with the reason).",
        "check.unavailable": "The verification could not run. Please try again later.",
        "check.when": "Verified on {time}; it runs again after ten minutes.",
        "check.steps": "Steps",
        "check.status.pass": "passed",
        "check.status.fail": "failed",
        "check.status.skip": "not run",
        "check.yourself": "Run the same verification on your own computer:",
        "check.back": "Back to the petition",
        "receipt.title": "Check a receipt",
        "receipt.intro": (
            "A receipt proves that a signature is in a petition's public log. Choose the "
            "receipt file you downloaded (receipt.fpr): it is checked here, then discarded. "
            "It holds your name and email, so only send it to the node you signed on."
        ),
        "receipt.file": "Receipt file",
        "receipt.file_hint": "The receipt.fpr file from your signer's page.",
        "receipt.submit": "Check the receipt",
        "receipt.ok": "This receipt is valid: the signature is in the log.",
        "receipt.failed": "This receipt does not hold: {step} failed.",
        "receipt.missing": "Choose a receipt file.",
        "receipt.step.receipt-format": "The file is a well-formed receipt",
        "receipt.step.receipt-checkpoint": "The log's checkpoint is signed by its node",
        "receipt.step.receipt-witnesses": "Enough witnesses cosigned the checkpoint",
        "receipt.step.receipt-inclusion": "The entry is in the log under that checkpoint",
        "receipt.step.receipt-commitment": "The entry's commitment opens with your name and email",
        "receipt.step.receipt-still-in-log": "The log this node serves now still contains it",
        "receipt.link": "Check your receipt on this node",
        "embed.count": "signatures",
        "embed.sign": "Sign this petition",
        "embed.snippet": "Show the count on your site:",
        "admin.preview": "Preview",
        "admin.preview_heading": "Preview",
        "admin.preview_intro": "As signers will read it. Nothing is published until you press "
                               "the other button.",
        "consented.heading": "Names for the addressee",
        "consented.intro": (
            "Download the names of the signers on {node} who agreed to be named to "
            "{addressee}, and no one else's, encrypted to your key: {node} never holds the "
            "key that opens the file. Other hosting nodes export their own signers. Make a "
            "key pair once with fedpetition consent-key, and open the file with "
            "fedpetition open-consented."
        ),
        "consented.key": "Your public key (fpc1…)",
        "consented.key_hint": "Printed by fedpetition consent-key; the private key stays "
                              "with you.",
        "consented.submit": "Download the encrypted list",
        "form.error.key": "Paste a public key made by fedpetition consent-key (fpc1…).",
    },
    "fr": {
        "mail.confirm.subject": "Confirmez votre signature : {title}",
        "mail.confirm.body": (
            "Bonjour {name},\n\n"
            "Vous avez demandé à signer la pétition « {title} » sur {node}.\n\n"
            "Pour confirmer, ouvrez ce lien puis appuyez sur le bouton de la page :\n{link}\n\n"
            "Tant que vous ne l'avez pas fait, votre signature n'est pas comptée. Si vous "
            "n'êtes pas à l'origine de cette demande, ignorez ce message : vos informations "
            "seront effacées dans {hours} heures.\n\n"
            "Le même lien affichera ensuite votre reçu et vous permettra de retirer votre "
            "signature.\n\n"
            "Votre nom et votre adresse restent sur {node}, chiffrés ; le registre public ne "
            "contient qu'une entrée anonyme.\n"
        ),
        "mail.already.subject": "Vous avez déjà signé : {title}",
        "mail.already.body": (
            "Bonjour,\n\n"
            "Quelqu'un (sans doute vous) a tenté de signer la pétition « {title} » sur {node} "
            "avec cette adresse, qui l'a déjà signée. Rien n'a été ajouté.\n\n"
            "Votre lien personnel, pour voir votre reçu ou retirer votre signature, est "
            "désormais :\n{link}\n(les liens précédents ne fonctionnent plus).\n"
        ),
        "mail.privacy.subject": "Vos données sur {node}",
        "mail.privacy.body": (
            "Bonjour,\n\n"
            "Vous avez demandé ce que {node} conserve sur cette adresse. Ce lien, valable 24 "
            "heures, permet de le télécharger ou de le faire effacer :\n{link}\n\n"
            "Si vous n'êtes pas à l'origine de cette demande, ignorez ce message.\n"
        ),
        "error.closed": "Cette pétition est close.",
        "error.not_found": "Introuvable.",
        "error.rate_limited": "Trop de demandes. Merci de réessayer plus tard.",
        "error.expired": "Ce lien a expiré. Merci de signer à nouveau.",
        "error.invalid": "Merci de vérifier le formulaire : {field}.",
        # pages (fedpetition.node.routes.pages and its templates)
        "lang.name": "Français",
        "format.thousands": "\u202f",
        "format.date": "{day:02d}/{month:02d}/{year}",
        "format.datetime": "{day:02d}/{month:02d}/{year} à {hour:02d}:{minute:02d} UTC",
        "site.skip": "Aller au contenu",
        "site.nav": "Menu principal",
        "site.language": "Langue",
        "site.petitions": "Pétitions",
        "site.privacy": "Vos données",
        "site.organisers": "Organisateurs",
        "site.footer": (
            "{node} est un nœud fedpetition : ses décomptes sont publiés dans des registres que "
            "chacun peut vérifier."
        ),
        "list.title": "Pétitions",
        "list.intro": (
            "Les pétitions hébergées sur {node}. Chaque signature est confirmée par e-mail et "
            "comptée dans un registre public que chacun peut vérifier."
        ),
        "list.count": "Signatures : {count}",
        "list.empty": "Aucune pétition pour l'instant.",
        "petition.open": "Ouverte",
        "petition.closed": "Close",
        "petition.open_until": "Ouverte jusqu'au {deadline}.",
        "petition.closed_since": "Cette pétition ne reçoit plus de signatures.",
        "petition.addressee": "Adressée à :",
        "petition.count_heading": "Décompte",
        "petition.count_label": (
            "Signatures comptées sur {node}, comme le prouve son registre public"
        ),
        "petition.next_threshold": "Prochain palier : {count} sur {threshold} signatures",
        "petition.all_thresholds": "Tous les paliers fixés par les organisateurs sont atteints.",
        "petition.reached": "Palier de {threshold} atteint le {date}",
        "petition.text_heading": "La pétition",
        "petition.not_translated": (
            "Cette pétition n'existe pas dans votre langue : elle est affichée dans sa langue "
            "d'origine."
        ),
        "sign.heading": "Signer cette pétition",
        "sign.name": "Votre nom",
        "sign.name_hint": (
            "Tel qu'il doit apparaître si vous acceptez de le transmettre au destinataire."
        ),
        "sign.email": "Votre adresse e-mail",
        "sign.email_hint": (
            "Nous vous envoyons un lien pour confirmer votre signature. Chaque adresse ne signe "
            "qu'une fois."
        ),
        "sign.region": "Région (facultatif)",
        "sign.region_hint": (
            "Un code ISO 3166, par exemple FR ou FR-IDF. Il est publié avec votre entrée anonyme."
        ),
        "sign.consents": "Vos choix (facultatifs)",
        "sign.updates": "Envoyez-moi des nouvelles de cette pétition.",
        "sign.addressee": "Transmettre mon nom au destinataire ({addressee}).",
        "sign.privacy_note": (
            "Votre nom et votre adresse restent sur {node}, chiffrés. Le registre public ne "
            "contient qu'une entrée anonyme."
        ),
        "sign.privacy_link": "Comment vos données sont traitées",
        "sign.submit": "Signer",
        "sign.closed": "Cette pétition est close : elle ne reçoit plus de signatures.",
        "chart.heading": "Évolution des signatures",
        "chart.title": "Nombre de signatures au fil du temps",
        "chart.summary": (
            "Du {start} au {end}, le décompte est passé de 0 à {count} (maximum : {peak})."
        ),
        "chart.data": "Les décomptes horaires en données ouvertes (JSON)",
        "chart.empty": "Aucune signature n'a encore été comptée.",
        "regions.heading": "Signatures par région",
        "regions.region": "Région",
        "regions.count": "Signatures",
        "regions.none": "Non précisée",
        "versions.heading": "Versions du texte",
        "versions.intro": (
            "Les organisateurs peuvent modifier le texte : chaque version reste publique et les "
            "signatures continuent de compter."
        ),
        "versions.item": "Version {number} du {date}",
        "versions.current": "actuelle",
        "versions.page_title": "Version {number}",
        "versions.notice": "Vous lisez la version {number} sur {total}.",
        "versions.to_current": "Voir la pétition actuelle",
        "versions.created": "Publiée le",
        "versions.deadline": "Date limite",
        "versions.signed_document": "Cette version en document signé",
        "verify.heading": "Vérifiez le décompte vous-même",
        "verify.intro": (
            "{node} publie, signées, toutes les entrées du registre de cette pétition : chacun "
            "peut recompter."
        ),
        "verify.bundle": "Télécharger l'archive (registre, points de contrôle et textes)",
        "verify.how": "Pour la vérifier, installez fedpetition et lancez :",
        "verify.federated": (
            "Le décompte réunit les registres de plusieurs nœuds. Un vérificateur les récupère "
            "tous auprès des nœuds et recompte ; installez fedpetition et lancez :"
        ),
        "federated.label": (
            "Signatures comptées sur les {hosts} nœuds qui hébergent cette pétition (une "
            "personne qui a signé sur deux nœuds compte une fois), recomptées par {node} à "
            "partir de leurs registres publics"
        ),
        "federated.pending": "pas encore calculé",
        "federated.heading": "Nœuds qui hébergent cette pétition",
        "federated.node": "Nœud",
        "federated.counted": "Comptées sur ce nœud",
        "federated.status": "Son registre",
        "federated.witnessed": "vérifié, attesté par {witnesses}",
        "federated.unchecked": "pas encore vérifié",
        "federated.problem": "non compté : {problem}",
        "sign.not_host": (
            "{node} a demandé à héberger cette pétition : il recevra des signatures dès que le "
            "nœud qui l'a lancée l'aura admis."
        ),
        "sent.heading": "Consultez vos e-mails",
        "sent.sign": (
            "Si cette adresse peut signer cette pétition, nous lui avons envoyé un message avec un "
            "lien. Ouvrez-le pour confirmer votre signature : d'ici là, elle n'est pas comptée."
        ),
        "sent.privacy": (
            "Nous avons envoyé à cette adresse un lien, valable 24 heures, pour télécharger ou "
            "effacer les données que ce nœud détient à son sujet."
        ),
        "sent.spam": "Rien après quelques minutes ? Regardez dans vos courriers indésirables.",
        "sent.back": "Retour",
        "signer.title": "Votre signature",
        "signer.petition": "Pétition :",
        "signer.state_heading": "Où en est-elle ?",
        "signer.pending": (
            "Vous n'avez pas encore confirmé : votre signature n'est pas comptée. Appuyez sur le "
            "bouton pour la confirmer."
        ),
        "signer.confirm": "Confirmer ma signature",
        "signer.expired": (
            "Ce lien de confirmation a expiré et vos informations sont effacées. Vous pouvez "
            "signer à nouveau."
        ),
        "signer.sign_again": "Signer à nouveau",
        "signer.confirmed": (
            "Confirmée. Votre signature est en cours d'ajout au registre public ; cette page se "
            "met à jour toute seule."
        ),
        "signer.counted": "Merci : votre signature est comptée.",
        "signer.index": "Sa position dans le registre public : {index}.",
        "signer.withdrawing": (
            "Votre retrait est en cours d'ajout au registre public ; cette page se met à jour "
            "toute seule."
        ),
        "signer.withdrawn": "Vous avez retiré votre signature : elle n'est plus comptée.",
        "signer.receipt_heading": "Votre reçu",
        "signer.receipt_intro": (
            "Le reçu prouve que votre entrée figure dans le registre public. Il contient votre nom "
            "et votre adresse : gardez-le pour vous."
        ),
        "signer.receipt_download": "Télécharger mon reçu",
        "signer.receipt_how": "Pour le vérifier, installez fedpetition et lancez :",
        "signer.withdraw_heading": "Retirer votre signature",
        "signer.withdraw_intro": (
            "Vous pouvez la retirer à tout moment : une entrée de retrait est ajoutée au registre "
            "public et le décompte baisse d'une unité."
        ),
        "signer.withdraw": "Retirer ma signature…",
        "signer.data_heading": "Ce qui est conservé, et où",
        "signer.data_node": "Sur {node}, chiffrés et jamais publiés :",
        "signer.name": "Nom",
        "signer.email": "Adresse e-mail",
        "signer.region": "La région indiquée, {region}, est publiée avec votre entrée anonyme.",
        "signer.data_log": (
            "Le registre public ne contient qu'une entrée anonyme : ni nom, ni adresse, rien que "
            "d'autres puissent relier à vous."
        ),
        "signer.data_link": "Vous pouvez télécharger ou effacer vos données à tout moment :",
        "signer.data_privacy": "vos données",
        "confirm.cancel": "Non, revenir en arrière",
        "confirm.withdraw.heading": "Retirer votre signature ?",
        "confirm.withdraw.text": (
            "Votre signature ne sera plus comptée. Une entrée de retrait est ajoutée au registre "
            "public. Vous pourrez signer à nouveau plus tard."
        ),
        "confirm.withdraw.button": "Oui, retirer ma signature",
        "confirm.erase.heading": "Effacer vos données ?",
        "confirm.erase.text": (
            "Votre nom, votre adresse et vos liens personnels sont effacés de ce nœud, pour toutes "
            "les pétitions. Les entrées anonymes déjà inscrites aux registres publics restent et "
            "continuent de compter : personne ne peut plus les relier à vous, et vous ne pourrez "
            "plus les retirer. Pour retirer une signature du décompte, retirez-la d'abord."
        ),
        "confirm.erase.button": "Oui, effacer mes données",
        "confirm.close.heading": "Clore cette pétition ?",
        "confirm.close.text": (
            "Elle ne recevra plus de signatures, et c'est définitif. Son registre et son décompte "
            "restent publics."
        ),
        "confirm.close.button": "Oui, la clore",
        "erased.heading": "Données effacées",
        "erased.text": "Signatures effacées de ce nœud : {count}.",
        "privacy.title": "Vos données",
        "privacy.stored_heading": "Ce que ce nœud conserve",
        "privacy.stored_node": (
            "Quand vous signez, {node} conserve votre nom, votre adresse e-mail et vos choix, "
            "chiffrés. Ils ne sont jamais publiés."
        ),
        "privacy.stored_log": (
            "Le registre public de chaque pétition ne contient qu'une entrée anonyme par "
            "signature, avec la région si vous l'avez indiquée."
        ),
        "privacy.stored_pending": (
            "Une signature non confirmée dans les {hours} heures est effacée."
        ),
        "privacy.stored_retention": (
            "Les noms et adresses sont effacés {days} jours après la clôture de la pétition."
        ),
        "privacy.stored_cookies": (
            "Aucun pistage : les seuls cookies sont votre langue, un jeton de sécurité pour les "
            "formulaires et, pour les organisateurs, leur session."
        ),
        "privacy.request_heading": "Télécharger ou effacer vos données",
        "privacy.request_intro": (
            "Indiquez votre adresse e-mail : nous lui envoyons un lien, valable 24 heures, pour "
            "télécharger vos données ou les faire effacer."
        ),
        "privacy.email": "Votre adresse e-mail",
        "privacy.submit": "M'envoyer le lien",
        "privacy.data_title": "Vos données sur ce nœud",
        "privacy.data_intro": "Signatures que {node} détient pour l'adresse",
        "privacy.petition": "Pétition",
        "privacy.status": "État",
        "privacy.since": "Signée le",
        "privacy.nothing": "Ce nœud ne détient aucune signature pour cette adresse.",
        "privacy.log_note": (
            "Les registres publics ne contiennent que des entrées anonymes : ni nom, ni adresse."
        ),
        "privacy.export_heading": "Télécharger",
        "privacy.export": "Télécharger mes données (JSON)",
        "privacy.erase_heading": "Effacer",
        "privacy.erase_intro": (
            "L'effacement supprime votre nom et votre adresse de ce nœud. Pour retirer une "
            "signature du décompte, retirez-la d'abord avec le lien de votre e-mail de "
            "confirmation."
        ),
        "privacy.erase": "Effacer mes données…",
        "status.pending": "en attente de confirmation",
        "status.confirmed": "confirmée, en cours d'ajout au registre",
        "status.counted": "comptée",
        "status.withdrawing": "retrait en cours d'ajout au registre",
        "status.withdrawn": "retirée",
        "form.has_errors": "Certains champs sont à corriger : voyez les messages ci-dessous.",
        "form.error.name": "Indiquez votre nom (200 caractères au plus).",
        "form.error.email": "Indiquez une adresse e-mail valide, par exemple nom@exemple.fr.",
        "form.error.region": (
            "Indiquez un code ISO 3166, par exemple FR ou FR-IDF, ou laissez vide."
        ),
        "form.error.slug": (
            "Utilisez de 1 à 63 lettres minuscules, chiffres et tirets, en commençant par une "
            "lettre ou un chiffre."
        ),
        "form.error.slug_taken": "Cette adresse est déjà prise : choisissez-en une autre.",
        "form.error.languages": "Choisissez au moins une langue.",
        "form.error.title": "Donnez un titre dans cette langue (300 caractères au plus).",
        "form.error.text": "Donnez le texte dans cette langue.",
        "form.error.addressee": "Indiquez à qui la pétition s'adresse (300 caractères au plus).",
        "form.error.deadline": "Indiquez une date et une heure à venir (UTC).",
        "form.error.thresholds": (
            "Indiquez des nombres entiers positifs, croissants, séparés par des virgules, ou "
            "laissez vide."
        ),
        "form.error.login": "Nom ou mot de passe incorrect.",
        "form.error.invalid": "Cette valeur n'est pas acceptée.",
        "error.csrf": (
            "Ce formulaire a expiré ou ne vient pas de ce site. Revenez en arrière, rechargez la "
            "page et réessayez."
        ),
        "error.not_yet": (
            "Votre reçu n'est pas encore prêt : votre entrée est en cours d'ajout au registre. "
            "Réessayez dans quelques secondes."
        ),
        "error.unsupported_media_type": "Cette demande ne vient pas d'un formulaire de ce site.",
        "error.method_not_allowed": "Cette page ne s'utilise pas ainsi.",
        "error.too_large": "Ce que vous avez envoyé est trop volumineux.",
        "page.error.title": "Erreur {status}",
        "page.error.generic": "Cette demande n'a pas pu aboutir.",
        "page.error.home": "Retour aux pétitions",
        "admin.login_title": "Connexion des organisateurs",
        "admin.name": "Nom",
        "admin.password": "Mot de passe",
        "admin.login": "Se connecter",
        "admin.logout": "Se déconnecter",
        "admin.logged_in": "Session : {name}",
        "admin.title": "Gérer les pétitions",
        "admin.new": "Nouvelle pétition",
        "admin.petition": "Pétition",
        "admin.state": "État",
        "admin.count": "Signatures",
        "admin.deadline": "Date limite",
        "admin.new_title": "Nouvelle pétition",
        "admin.edit_title": "Modifier la pétition",
        "admin.public_page": "page publique",
        "admin.saved": "La version {number} est publiée.",
        "admin.unchanged": "Rien n'a changé : aucune nouvelle version n'a été publiée.",
        "admin.edit_intro": (
            "Enregistrer publie une nouvelle version du texte : les versions précédentes restent "
            "publiques et les signatures continuent de compter."
        ),
        "admin.slug": "Adresse de la pétition",
        "admin.slug_hint": (
            "Utilisée dans les liens : lettres minuscules, chiffres et tirets, par exemple "
            "sauvons-le-parc. Elle ne pourra plus changer."
        ),
        "admin.languages": "Langues",
        "admin.texts_in": "Texte ({language_name})",
        "admin.texts_hint": (
            "Nécessaire seulement si cette langue est cochée plus haut. Une ligne vide sépare les "
            "paragraphes."
        ),
        "admin.title_field": "Titre",
        "admin.text_field": "Texte",
        "admin.addressee": "Destinataire",
        "admin.deadline_field": "Date limite (UTC)",
        "admin.deadline_hint": (
            "Date et heure, en UTC, après lesquelles personne ne peut plus signer."
        ),
        "admin.thresholds": "Paliers (facultatif)",
        "admin.thresholds_hint": (
            "Nombres de signatures à atteindre, séparés par des virgules, par exemple 1000, 10000, "
            "100000."
        ),
        "admin.create": "Créer la pétition",
        "admin.save": "Publier une nouvelle version",
        "admin.close_heading": "Clore la pétition",
        "admin.close_intro": "Clore arrête les signatures avant la date limite. C'est définitif.",
        "admin.close": "Clore la pétition…",
        "check.link": "Vérifier ce décompte maintenant, étape par étape",
        "check.title": "Vérifier le décompte",
        "check.intro": (
            "{node} recompte cette pétition à partir de ce que publie chaque nœud qui "
            "l'héberge, avec les mêmes étapes que le vérificateur fedpetition : signatures "
            "des textes et des points de contrôle, arbres de Merkle, règles de chaque "
            "registre, puis décompte fédéré. Rien n'est repris des chiffres de {node}."
        ),
        "check.running": "La vérification est en cours. Cette page se recharge toute seule.",
        "check.ok": "Vérifié : {total} signatures. Toutes les étapes sont passées.",
        "check.failed": "Non vérifié : une étape a échoué (ci-dessous, avec la raison).",
        "check.unavailable": "La vérification n'a pas pu être menée. Réessayez plus tard.",
        "check.when": "Vérifié le {time} ; elle est refaite au bout de dix minutes.",
        "check.steps": "Étapes",
        "check.status.pass": "réussie",
        "check.status.fail": "échouée",
        "check.status.skip": "non menée",
        "check.yourself": "Menez la même vérification sur votre ordinateur :",
        "check.back": "Retour à la pétition",
        "receipt.title": "Vérifier un reçu",
        "receipt.intro": (
            "Un reçu prouve qu'une signature figure dans le registre public d'une pétition. "
            "Choisissez le fichier de reçu téléchargé (receipt.fpr) : il est vérifié ici puis "
            "oublié. Il contient vos nom et adresse : ne l'envoyez qu'au nœud où vous avez "
            "signé."
        ),
        "receipt.file": "Fichier de reçu",
        "receipt.file_hint": "Le fichier receipt.fpr de votre page de signataire.",
        "receipt.submit": "Vérifier le reçu",
        "receipt.ok": "Ce reçu est valable : la signature figure dans le registre.",
        "receipt.failed": "Ce reçu ne tient pas : l'étape {step} a échoué.",
        "receipt.missing": "Choisissez un fichier de reçu.",
        "receipt.step.receipt-format": "Le fichier est un reçu bien formé",
        "receipt.step.receipt-checkpoint": "Le point de contrôle est signé par son nœud",
        "receipt.step.receipt-witnesses": "Assez de témoins ont cosigné le point de contrôle",
        "receipt.step.receipt-inclusion": "L'entrée figure dans le registre sous ce point",
        "receipt.step.receipt-commitment": (
            "L'engagement de l'entrée s'ouvre avec vos nom et adresse"
        ),
        "receipt.step.receipt-still-in-log": (
            "Le registre que ce nœud sert aujourd'hui la contient toujours"
        ),
        "receipt.link": "Vérifier votre reçu sur ce nœud",
        "embed.count": "signatures",
        "embed.sign": "Signer cette pétition",
        "embed.snippet": "Affichez le décompte sur votre site :",
        "admin.preview": "Aperçu",
        "admin.preview_heading": "Aperçu",
        "admin.preview_intro": "Tel que les signataires le liront. Rien n'est publié avant "
                               "d'appuyer sur l'autre bouton.",
        "consented.heading": "Noms pour le destinataire",
        "consented.intro": (
            "Téléchargez les noms des signataires de {node} qui ont accepté d'être nommés "
            "à {addressee}, et eux seuls, chiffrés pour votre clé : {node} ne détient jamais "
            "la clé qui ouvre le fichier. Les autres nœuds hôtes exportent leurs propres "
            "signataires. Créez une paire de clés une fois avec fedpetition consent-key, et "
            "ouvrez le fichier avec fedpetition open-consented."
        ),
        "consented.key": "Votre clé publique (fpc1…)",
        "consented.key_hint": "Affichée par fedpetition consent-key ; la clé privée reste "
                              "chez vous.",
        "consented.submit": "Télécharger la liste chiffrée",
        "form.error.key": "Collez une clé publique créée par fedpetition consent-key "
                          "(fpc1…).",
    },
}


def pick(preferred: Iterable[str], available: Iterable[str] = LANGUAGES) -> str:
    """The first preferred language the node speaks, else the default."""
    choices = list(available)
    for language in preferred:
        base = language.strip().lower().split("-", 1)[0]
        if base in choices:
            return base
    return DEFAULT if DEFAULT in choices else choices[0]


def from_accept_language(header: str | None) -> list[str]:
    """Languages of an Accept-Language header, best first (RFC 9110 §12.5.4)."""
    if not header:
        return []
    weighted = []
    for position, part in enumerate(header.split(",")):
        piece = part.strip()
        if not piece:
            continue
        tag, _, params = piece.partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        if quality > 0:
            weighted.append((-quality, position, tag.strip()))
    return [tag for _, _, tag in sorted(weighted)]


def t(language: str, key: str, **values: object) -> str:
    """The text ``key`` in ``language`` (falling back to the default language)."""
    catalogue = MESSAGES.get(language) or MESSAGES[DEFAULT]
    text = catalogue.get(key) or MESSAGES[DEFAULT][key]
    return text.format(**values) if values else text
