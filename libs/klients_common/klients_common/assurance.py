"""The eIDAS levels of assurance (Regulation (EU) No 910/2014, art. 8): the ``acr`` of every Klients token
and login. E-mail and password is ``low``; Smart-ID and the internet banks ``substantial``; eParaksts
``high``. ``LOA_ORDER`` ranks them, for "at least substantial" checks (``acr_values``, step-up)."""

from __future__ import annotations

LOA_LOW = "http://eidas.europa.eu/LoA/low"
LOA_SUBSTANTIAL = "http://eidas.europa.eu/LoA/substantial"
LOA_HIGH = "http://eidas.europa.eu/LoA/high"
LOA_ORDER = {LOA_LOW: 1, LOA_SUBSTANTIAL: 2, LOA_HIGH: 3}
