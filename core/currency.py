"""ISO 4217: each active currency's minor unit (its exponent: JPY 0, EUR 2, KWD 3).

A small table kept here rather than a library: the list changes a code or two a decade,
the pages need only the exponent, and the libraries that carry it (babel, pycountry,
py-moneyed) bring CLDR locale data or whole registries for one number per code, and
some give CLDR's cash digits (IQD 0) instead of ISO's (IQD 3). Amounts everywhere are
integers in the minor unit; ``amount / 10**exponent`` is the major unit.
"""

from __future__ import annotations

from typing import Any

_EXPONENT_0 = "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF"
_EXPONENT_3 = "BHD IQD JOD KWD LYD OMR TND"
_EXPONENT_4 = "CLF UYW"
_EXPONENT_2 = (
    "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BOV BRL BSD BTN "
    "BWP BYN BZD CAD CDF CHE CHF CHW CNY COP COU CRC CUC CUP CVE CZK DKK DOP DZD EGP ERN "
    "ETB EUR FJD FKP GBP GEL GHS GIP GMD GTQ GYD HKD HNL HTG HUF IDR ILS INR IRR JMD KES "
    "KGS KHR KPW KYD KZT LAK LBP LKR LRD LSL MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK "
    "MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD PAB PEN PGK PHP PKR PLN QAR RON RSD RUB SAR "
    "SBD SCR SDG SEK SGD SHP SLE SLL SOS SRD SSP STN SVC SYP SZL THB TJS TMT TOP TRY TTD "
    "TWD TZS UAH USD USN UYU UZS VED VES WST XCD YER ZAR ZMW ZWL"
)

EXPONENTS: dict[str, int] = {
    code: exponent
    for exponent, codes in ((0, _EXPONENT_0), (2, _EXPONENT_2), (3, _EXPONENT_3), (4, _EXPONENT_4))
    for code in codes.split()
}


def is_currency(code: str) -> bool:
    """Whether ``code`` is an active ISO 4217 currency (upper case, as stored)."""
    return code in EXPONENTS


def exponent(code: str) -> int:
    """The currency's minor unit: digits after the decimal point (2 for a code not known)."""
    return EXPONENTS.get(code, 2)


def priced(amount: int, currency: str) -> dict[str, Any]:
    """A price as the pages read it: minor units, the code and its exponent."""
    return {"amount": amount, "currency": currency, "exponent": exponent(currency)}
