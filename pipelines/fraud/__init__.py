"""The fraud flow: the OMS's events and the API's logins, scored as they happen
(``docs/fraud.md``)."""
