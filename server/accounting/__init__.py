"""What a request costs and leaves behind: admission, metering, the audit record and ledger."""
