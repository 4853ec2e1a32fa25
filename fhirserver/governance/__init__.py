"""Exchange governance: who holds each record (custodian), what patients consented to share, and
the policy that turns both into the guard every query of a hospital's token is ANDed with
(docs/governance.md)."""
