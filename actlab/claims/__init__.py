"""The claims machinery: the register of claims, the experiment types that test them, the
decision rules and statistics that judge them, their figures, the report and the
preregistration ledger."""
