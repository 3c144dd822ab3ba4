"""Alert texts in Dutch and English for a municipal reader, not for an engineer.

One sentence: what is wrong, at which sensor, the value and the limit, with Dutch
decimal commas and durations in minutes/hours rather than seconds.
"""

from __future__ import annotations

from livinglab.codec.payload import UNITS

QUANTITY_NAMES: dict[str, tuple[str, str]] = {
    "laeq": ("geluidsniveau (LAeq)", "noise level (LAeq)"),
    "lamax": ("piekgeluid (LAmax)", "peak noise level (LAmax)"),
    "lamin": ("laagste geluidsniveau (LAmin)", "lowest noise level (LAmin)"),
    "l10": ("geluidsniveau L10", "noise level L10"),
    "l50": ("geluidsniveau L50", "noise level L50"),
    "l90": ("achtergrondgeluid L90", "background noise L90"),
    "pm1": ("fijnstof PM1", "particulate matter PM1"),
    "pm25": ("fijnstof PM2,5", "particulate matter PM2.5"),
    "pm10": ("fijnstof PM10", "particulate matter PM10"),
    "no2": ("stikstofdioxide (NO₂)", "nitrogen dioxide (NO₂)"),
    "o3": ("ozon (O₃)", "ozone (O₃)"),
    "temperature": ("temperatuur", "temperature"),
    "humidity": ("luchtvochtigheid", "humidity"),
    "pressure": ("luchtdruk", "air pressure"),
    "battery": ("batterijspanning", "battery voltage"),
}

_PERIOD = {"day": ("overdag", "during the day"), "evening": ("'s avonds", "in the evening"),
           "night": ("'s nachts", "at night")}  # fmt: skip

# kind -> (subject nl, subject en); {q} is the quantity's name
SUBJECTS: dict[str, tuple[str, str]] = {
    "range.physical": (
        "{q}: onmogelijke meetwaarde, sensorfout",
        "{q}: impossible reading, sensor fault",
    ),
    "range.realistic": ("{q}: onwaarschijnlijke meetwaarde", "{q}: implausible reading"),
    "flatline": ("{q} blijft steeds dezelfde waarde geven", "{q} stuck at the same value"),
    "spike": ("{q}: plotselinge piek in de metingen", "{q}: sudden spike in the readings"),
    "rate": ("{q} verandert onwaarschijnlijk snel", "{q} changes implausibly fast"),
    "humidity_pm": ("Mist of verzadigde lucht in het lab, fijnstofmeting mogelijk te hoog",
                    "Fog or saturated air across the lab, particulate readings may be too high"),
    "battery_low": ("Batterij bijna leeg", "Battery low"),
    "reboot": ("Sensor opnieuw opgestart", "Sensor restarted"),
    "offline": ("Sensor stuurt geen gegevens", "Sensor is not sending data"),
    "spatial_outlier": ("{q} wijkt sterk af van de andere sensoren in het lab",
                        "{q} far off the other sensors in the lab"),
    "threshold.noise_night": ("Geluidsniveau 's nachts boven de norm",
                              "Night-time noise level above the limit"),
    "threshold.noise_night_level": ("Aanhoudend hard geluid 's nachts",
                                    "Sustained loud noise at night"),
    "threshold.noise_lden": ("Geluidsbelasting (Lden) boven de WHO-advieswaarde",
                             "Noise exposure (Lden) above the WHO guideline"),
    **{f"threshold.noise_business_{p}": (f"Bedrijfsgeluid {nl} boven de norm",
                                         f"Business noise {en} above the limit")
       for p, (nl, en) in _PERIOD.items()},
    **{f"threshold.noise_business_lamax_{p}": (f"Piekgeluid van bedrijf {nl} boven de norm",
                                               f"Business peak noise {en} above the limit")
       for p, (nl, en) in _PERIOD.items()},
    "threshold.noise_construction_day": ("Bouwlawaai boven de dagwaarde",
                                         "Construction noise above the daytime value"),
    "threshold.pm25_day": ("Fijnstof PM2,5 daggemiddelde boven de norm",
                           "Particulate matter PM2.5 daily mean above the limit"),
    "threshold.pm10_day": ("Fijnstof PM10 daggemiddelde boven de norm",
                           "Particulate matter PM10 daily mean above the limit"),
    "threshold.no2_hour": ("Stikstofdioxide (NO₂) uurgemiddelde boven de norm",
                           "Nitrogen dioxide (NO₂) hourly mean above the limit"),
    "threshold.no2_day": ("Stikstofdioxide (NO₂) daggemiddelde boven de norm",
                          "Nitrogen dioxide (NO₂) daily mean above the limit"),
    "threshold.o3_hour": ("Ozon (O₃) uurgemiddelde boven de informatie- of alarmdrempel",
                          "Ozone (O₃) hourly mean above the information or alert threshold"),
    "threshold.o3_8h": ("Ozon (O₃) 8-uurgemiddelde boven de norm",
                        "Ozone (O₃) 8-hour mean above the limit"),
}  # fmt: skip
_FALLBACK = ("{q}: boven de grenswaarde", "{q}: above the limit")

# kind -> (detail nl, detail en) for open/update; fields are already formatted
DETAILS: dict[str, tuple[str, str]] = {
    "flatline": ("{value} achter elkaar op {reference}", "{value} in a row at {reference}"),
    "spike": ("{value} tegen mediaan {reference} (grens {threshold})",
              "{value} against median {reference} (limit {threshold})"),
    "spatial_outlier": ("{value} tegen {reference} bij de andere sensoren (grens {threshold})",
                        "{value} against {reference} at the other sensors (limit {threshold})"),
    "offline": ("al {value} geen gegevens (grens {threshold})",
                "no data for {value} (limit {threshold})"),
    "reboot": ("{value} herstart", "restarted {value}"),
}  # fmt: skip
_DETAIL = ("{value} (grens {threshold})", "{value} (limit {threshold})")
_RESOLVED = (
    "was {peak}, nu {value} (grens {threshold})",
    "was {peak}, now {value} (limit {threshold})",
)
RESOLVED_DETAILS: dict[str, tuple[str, str]] = {
    "offline": ("weer gegevens na {peak} stilte", "data again after {peak} of silence"),
    "reboot": ("geen nieuwe herstart", "no further restarts"),
}
_PREFIX = {"open": ("", ""), "update": ("Bijgewerkt – ", "Update – "),
           "resolved": ("Opgelost – ", "Resolved – ")}  # fmt: skip
_COUNT_UNITS = {"readings": ("metingen", "readings"), "resets": ("keer", "times")}


def duration(seconds: float, lang: int) -> str:
    """45 s, 15 min, 2 uur 5 min, 3 dagen 4 uur (lang 0 = nl, 1 = en)."""
    minutes = int(seconds // 60)
    if minutes < 1:
        return f"{int(seconds)} s"
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    h, d = ("uur", "dagen" if days != 1 else "dag") if lang == 0 else ("h", "d")
    if days:
        return f"{days} {d} {hours} {h}" if hours else f"{days} {d}"
    if hours:
        return f"{hours} {h} {minutes} min" if minutes else f"{hours} {h}"
    return f"{minutes} min"


def quantity_text(value: float | None, unit: str, lang: int, bare: bool = False) -> str:
    """A value with its unit: one decimal (two for volts), whole counts, seconds as duration.

    ``bare`` leaves the unit off (limits read "grens 45" after a value with its unit).
    """
    if value is None:
        return "–"
    if unit == "s":
        return duration(value, lang)
    if unit in _COUNT_UNITS:
        return f"{value:.0f}" if bare else f"{value:.0f} {_COUNT_UNITS[unit][lang]}"
    digits = 2 if unit == "V" else 1
    text = f"{value:.{digits}f}".rstrip("0").rstrip(".")
    text = "0" if text == "-0" else text
    if lang == 0:
        text = text.replace(".", ",")
    return text if bare or not unit else f"{text} {unit}"


def render(
    *,
    kind: str,
    quantity: str | None,
    state: str,
    sensor: str,
    value: float,
    threshold: float,
    reference: float | None,
    peak: float,
    unit: str,
) -> tuple[str, str]:
    """(message_nl, message_en) for one alert event."""
    out = []
    for lang in (0, 1):
        fallback = (quantity or "meting", quantity or "measurement")
        name = QUANTITY_NAMES.get(quantity or "", fallback)[lang]
        subject = SUBJECTS.get(kind, _FALLBACK)[lang].format(q=name)
        if state == "resolved":
            template = RESOLVED_DETAILS.get(kind, _RESOLVED)
        else:
            template = DETAILS.get(kind, _DETAIL)
        ref_unit = UNITS.get(quantity or "", "") if unit in _COUNT_UNITS else unit
        detail = template[lang].format(
            value=quantity_text(value, unit, lang),
            threshold=quantity_text(threshold, unit, lang, bare=True),
            peak=quantity_text(peak, unit, lang),
            reference=quantity_text(reference, ref_unit, lang),
        )
        prefix = _PREFIX[state][lang]
        out.append(f"{prefix}{subject[:1].upper()}{subject[1:]}, sensor {sensor}: {detail}")
    return out[0], out[1]
