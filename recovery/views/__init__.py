"""The recovery app's web pages, one module per page family.

- `till`: the till sidebar (/pos/), for every member at a location.
- `queue`: the owners' and managers' queue (/recovery/), its CSV, row and bulk actions, and
  the daily digest toggle.
- `cases`: the case page.
- `customers`: merging a duplicate customer, from the customer page.
- `insights`: the insights page (/insights/).
- `playbooks`: the playbook pages.
- `managers`: what the pages only owners and managers open share.
"""
