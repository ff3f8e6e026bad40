"""The daily regulatory transaction report: MiFIR RTS 22 as ISO 20022 auth.016.001.03.

``records`` turns the day's fills into report records, ``validate`` checks them and the built
document, ``xml_out`` and ``csv_out`` write them, ``report`` puts the steps together
(docs/regulatory.md).
"""
