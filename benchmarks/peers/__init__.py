"""One adapter module per library; see peers/base.py for the contract."""
