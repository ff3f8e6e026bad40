"""The records as an ISO 20022 auth.016.001.03 document (FinInstrmRptgTxRpt), built through
the ``python_iso20022`` models and serialized by xsdata, and read back strictly.

Each record is one ``Tx/New`` (report status NEWT). What each element holds, and why, is in
docs/regulatory.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from python_iso20022.auth.auth_016_001_03 import models as m
from python_iso20022.auth.auth_016_001_03.enums import Side5Code
from python_iso20022.auth.enums import PhysicalTransferType4Code, RegulatoryTradingCapacity1Code
from xsdata.formats.dataclass.context import XmlContext
from xsdata.formats.dataclass.parsers import XmlParser
from xsdata.formats.dataclass.parsers.config import ParserConfig
from xsdata.formats.dataclass.serializers import XmlSerializer
from xsdata.formats.dataclass.serializers.config import SerializerConfig
from xsdata.models.datatype import XmlDate, XmlDateTime

from assets.regulatory.records import Party, Transaction

NAMESPACE: Final = "urn:iso:std:iso:20022:tech:xsd:auth.016.001.03"
_CONTEXT: Final = XmlContext()


@dataclass
class Document(m.Auth01600103):  # type: ignore[misc]  # the package has no type hints
    """The package's message under the root element name the schema gives every ISO 20022
    message, ``Document`` (the package's class would render as ``<Auth01600103>``)."""

    class Meta:
        name = "Document"
        namespace = NAMESPACE


def _party(p: Party) -> m.PartyIdentification79Auth01600103:
    if p.kind == "person":
        assert p.national_id is not None and p.birth_date is not None
        ident = m.PersonOrOrganisation1ChoiceAuth01600103(
            prsn=m.PersonIdentification10Auth01600103(
                frst_nm=p.first_name,
                nm=p.surname,
                birth_dt=XmlDate.from_date(p.birth_date),
                othr=m.GenericPersonIdentification1Auth01600103(
                    id=p.national_id,
                    schme_nm=m.PersonIdentificationSchemeName1ChoiceAuth01600103(prtry=p.id_scheme),
                ),
            )
        )
    else:
        ident = m.PersonOrOrganisation1ChoiceAuth01600103(lei=p.lei)
    owner = m.PartyIdentification76Auth01600103(id=ident, ctry_of_brnch=p.country_of_branch)
    return m.PartyIdentification79Auth01600103(acct_ownr=[owner])


def _instrument(r: Transaction) -> m.FinancialInstrumentAttributes5ChoiceAuth01600103:
    if r.isin is not None:
        return m.FinancialInstrumentAttributes5ChoiceAuth01600103(id=r.isin)
    # Fields 47-48: an index by its ISIN where it has one and its name; a currency pair or
    # a metal has no ISIN, and the schema still wants an underlying, so it is named as the
    # rate the contract follows (the symbol).
    underlying = m.FinancialInstrumentIdentification6ChoiceAuth01600103(
        indx=m.FinancialInstrument58Auth01600103(
            isin=r.underlying_isin,
            nm=m.FloatingInterestRate8Auth01600103(
                ref_rate=m.BenchmarkCurveName5ChoiceAuth01600103(nm=r.underlying_name)
            ),
        )
    )
    fx = None
    if r.notional_currency_2 is not None:
        fx = m.AssetClassAttributes1ChoiceAuth01600103(
            fx=m.DerivativeForeignExchange2Auth01600103(othr_ntnl_ccy=r.notional_currency_2)
        )
    return m.FinancialInstrumentAttributes5ChoiceAuth01600103(
        othr=m.SecurityInstrumentDescription22Auth01600103(
            fin_instrm_gnl_attrbts=m.SecurityInstrumentDescription23Auth01600103(
                full_nm=r.full_name, clssfctn_tp=r.cfi, ntnl_ccy=r.notional_currency
            ),
            deriv_instrm_attrbts=m.DerivativeInstrument6Auth01600103(
                pric_mltplr=r.price_multiplier,
                undrlyg_instrm=m.UnderlyingIdentification2ChoiceAuth01600103(
                    othr=m.FinancialInstrumentIdentification7ChoiceAuth01600103(sngl=underlying)
                ),
                dlvry_tp=PhysicalTransferType4Code(r.delivery_type),
                asst_clss_spcfc_attrbts=fx,
            ),
        )
    )


def transaction(r: Transaction) -> m.ReportingTransactionType3ChoiceAuth01600103:
    """One record as a new transaction report (NEWT)."""
    assert r.buyer is not None and r.seller is not None and r.capacity is not None
    price = m.SecuritiesTransactionPrice22ChoiceAuth01600103(
        pric=m.SecuritiesTransactionPrice2ChoiceAuth01600103(
            mntry_val=m.AmountAndDirection61Auth01600103(
                amt=m.ActiveCurrencyAnd13DecimalAmountAuth01600103(
                    value=r.price, ccy=r.price_currency
                )
            )
        )
    )
    new = m.SecuritiesTransactionReport7Auth01600103(
        tx_id=r.tx_id,
        exctg_pty=r.executing_lei,
        invstmt_pty_ind=True,
        submitg_pty=r.submitting_lei,
        buyr=_party(r.buyer),
        sellr=_party(r.seller),
        ordr_trnsmssn=m.SecuritiesTransactionTransmission2Auth01600103(trnsmssn_ind=False),
        tx=m.SecuritiesTransaction3Auth01600103(
            trad_dt=XmlDateTime.from_string(r.trading_datetime),
            tradg_cpcty=RegulatoryTradingCapacity1Code(r.capacity),
            qty=m.FinancialInstrumentQuantity25ChoiceAuth01600103(unit=r.quantity),
            pric=price,
            trad_vn=r.venue_mic,
        ),
        fin_instrm=_instrument(r),
        invstmt_dcsn_prsn=m.InvestmentParty1ChoiceAuth01600103(algo=r.decision_algo),
        exctg_prsn=m.ExecutingParty1ChoiceAuth01600103(algo=r.execution_algo),
        addtl_attrbts=m.SecuritiesTransactionIndicator2Auth01600103(
            shrt_sellg_ind=Side5Code(r.short_selling) if r.short_selling else None,
            rsk_rdcg_tx=r.commodity_derivative,
            scties_fincg_tx_ind=r.sft,
        ),
    )
    return m.ReportingTransactionType3ChoiceAuth01600103(new=new)


def document(records: Sequence[Transaction]) -> Document:
    return Document(
        fin_instrm_rptg_tx_rpt=m.FinancialInstrumentReportingTransactionReportV03Auth01600103(
            tx=[transaction(r) for r in records]
        )
    )


def render(doc: Document) -> str:
    """The document as UTF-8 XML text with its declaration, auth.016 as default namespace."""
    serializer = XmlSerializer(
        context=_CONTEXT, config=SerializerConfig(indent="  ", xml_declaration=True)
    )
    return serializer.render(doc, ns_map={None: NAMESPACE})


def parse_strict(source: bytes | str) -> Document:
    """Parse a report back into the models, refusing anything they do not define."""
    config = ParserConfig(
        fail_on_unknown_properties=True,
        fail_on_unknown_attributes=True,
        fail_on_converter_warnings=True,
    )
    parser = XmlParser(context=_CONTEXT, config=config)
    data = source.encode() if isinstance(source, str) else source
    return parser.from_bytes(data, Document)
