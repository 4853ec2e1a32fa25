"""The tamper-evident audit log: RFC 9162 Merkle tree hashes and proofs (merkle.py) and signed
checkpoints in the C2SP tlog-checkpoint format (checkpoint.py)."""
