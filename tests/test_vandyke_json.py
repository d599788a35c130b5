"""Every figure OR-DBM MRMC 2.51 prints for the Van Dyke data, reproduced from `analyze --format json`.

The printed output is ../shared/reference/vandyke/or-dbm-mrmc-2.51-output.txt
(trapezoidal AUC, jackknife covariances). Treatment 1 is cine MRI, treatment
2 spin-echo MRI. A figure agrees when it is within half a unit of the last
printed digit, which the JSON can only show because it keeps full precision.
"""

import io
import json

import pytest
from django.core.management import call_command

from tests.test_imrmc import vandyke_text  # noqa: F401  (fixture)

# (path in the JSON, printed text)
RRRC = ("analyses", "random_readers_random_cases")
FRRC = ("analyses", "fixed_readers_random_cases")
RRFC = ("analyses", "random_readers_fixed_cases")
TABLES = ("or_tables",)
PRINTED = [
    # reader AUCs
    *[(("reader_auc", f"reader{r - 1}", m), v) for r, m, v in [
        (1, "cine", "0.91964573"), (1, "spin-echo", "0.94782609"), (2, "cine", "0.85877617"),
        (2, "spin-echo", "0.90531401"), (3, "cine", "0.90386473"), (3, "spin-echo", "0.92173913"),
        (4, "cine", "0.97310789"), (4, "spin-echo", "0.99935588"), (5, "cine", "0.82979066"),
        (5, "spin-echo", "0.92995169")]],
    ((*RRRC, "treatments", 0, "estimate"), "0.89703704"), ((*RRRC, "treatments", 1, "estimate"), "0.94083736"),
    ((*RRRC, "differences", 0, "estimate"), "-0.04380032"),
    # ANOVA
    ((*TABLES, "anova", "treatment", "ss"), "0.00479617"), ((*TABLES, "anova", "treatment", "ms"), "0.00479617"),
    ((*TABLES, "anova", "reader", "ss"), "0.01534480"), ((*TABLES, "anova", "reader", "ms"), "0.00383620"),
    ((*TABLES, "anova", "treatment_x_reader", "ss"), "0.00220412"),
    ((*TABLES, "anova", "treatment_x_reader", "ms"), "0.00055103"),
    ((*TABLES, "anova", "reader_per_treatment", 0, "ms"), "0.00308263"),
    ((*TABLES, "anova", "reader_per_treatment", 1, "ms"), "0.00130460"),
    # OR components and correlations
    ((*TABLES, "components", "var_r"), "0.00153500"), ((*TABLES, "components", "var_tr"), "0.00020040"),
    ((*TABLES, "components", "cov1"), "0.00034661"), ((*TABLES, "components", "corr1"), "0.43203138"),
    ((*TABLES, "components", "cov2"), "0.00034407"), ((*TABLES, "components", "corr2"), "0.42886683"),
    ((*TABLES, "components", "cov3"), "0.00023903"), ((*TABLES, "components", "corr3"), "0.29793328"),
    ((*TABLES, "components", "var_error"), "0.00080229"),
    # DBM components
    ((*TABLES, "dbm_components", "var_r"), "0.00153500"), ((*TABLES, "dbm_components", "var_c"), "0.02724923"),
    ((*TABLES, "dbm_components", "var_tr"), "0.00020040"), ((*TABLES, "dbm_components", "var_tc"), "0.01197530"),
    ((*TABLES, "dbm_components", "var_rc"), "0.01226473"),
    ((*TABLES, "dbm_components", "var_trc_error"), "0.03997160"),
    # Analysis 1: random readers and random cases
    ((*RRRC, "test", "statistic"), "4.46"), ((*RRRC, "test", "p"), "0.0517"), ((*RRRC, "test", "df2"), "15.26"),
    ((*TABLES, "error_term", "value"), "0.00107626"), ((*TABLES, "error_term", "df"), "15.26"),
    ((*RRRC, "differences", 0, "estimate"), "-0.04380"), ((*RRRC, "differences", 0, "se"), "0.02075"),
    ((*RRRC, "differences", 0, "df"), "15.26"), ((*RRRC, "differences", 0, "statistic"), "-2.11"),
    ((*RRRC, "differences", 0, "p"), "0.0517"), ((*RRRC, "differences", 0, "ci", 0), "-0.08796"),
    ((*RRRC, "differences", 0, "ci", 1), "0.00036"),
    ((*RRRC, "treatments", 0, "se"), "0.03317360"), ((*RRRC, "treatments", 0, "df"), "12.74"),
    ((*RRRC, "treatments", 0, "ci", 0), "0.82522360"), ((*RRRC, "treatments", 0, "ci", 1), "0.96885048"),
    ((*TABLES, "per_treatment", 0, "cov2"), "0.00048396"),
    ((*RRRC, "treatments", 1, "se"), "0.02156637"), ((*RRRC, "treatments", 1, "df"), "12.71"),
    ((*RRRC, "treatments", 1, "ci", 0), "0.89413783"), ((*RRRC, "treatments", 1, "ci", 1), "0.98753689"),
    ((*TABLES, "per_treatment", 1, "cov2"), "0.00020419"),
    # Analysis 2: fixed readers and random cases
    ((*FRRC, "test", "statistic"), "5.47595"), ((*FRRC, "test", "p"), "0.0193"),
    ((*FRRC, "differences", 0, "se"), "0.01872"), ((*FRRC, "differences", 0, "statistic"), "-2.34"),
    ((*FRRC, "differences", 0, "p"), "0.0193"), ((*FRRC, "differences", 0, "ci", 0), "-0.08049"),
    ((*FRRC, "differences", 0, "ci", 1), "-0.00711"),
    ((*FRRC, "treatments", 0, "se"), "0.02428971"), ((*FRRC, "treatments", 0, "ci", 0), "0.84943008"),
    ((*FRRC, "treatments", 0, "ci", 1), "0.94464399"),
    ((*FRRC, "treatments", 1, "se"), "0.01677632"), ((*FRRC, "treatments", 1, "ci", 0), "0.90795637"),
    ((*FRRC, "treatments", 1, "ci", 1), "0.97371835"),
    ((*TABLES, "per_treatment", 0, "var_error"), "0.00101410"), ((*TABLES, "per_treatment", 1, "var_error"), "0.00059047"),
    *[item for j, (d, se, z, p, lo, hi, ve, c1) in enumerate([
        ("-0.02818", "0.02551", "-1.10", "0.2693", "-0.07818", "0.02182", "0.00069890", "0.00037347"),
        ("-0.04654", "0.02630", "-1.77", "0.0768", "-0.09809", "0.00501", "0.00110605", "0.00076016"),
        ("-0.01787", "0.03121", "-0.57", "0.5668", "-0.07904", "0.04330", "0.00084234", "0.00035532"),
        ("-0.02625", "0.01729", "-1.52", "0.1290", "-0.06014", "0.00764", "0.00015058", "0.00000108"),
        ("-0.10016", "0.04406", "-2.27", "0.0230", "-0.18651", "-0.01381", "0.00121357", "0.00024304"),
    ]) for item in [
        ((*FRRC, "readers", j, "estimate"), d), ((*FRRC, "readers", j, "se"), se),
        ((*FRRC, "readers", j, "statistic"), z), ((*FRRC, "readers", j, "p"), p),
        ((*FRRC, "readers", j, "ci", 0), lo), ((*FRRC, "readers", j, "ci", 1), hi),
        ((*TABLES, "per_reader", j, "var_error"), ve), ((*TABLES, "per_reader", j, "cov1"), c1),
    ]],
    # Analysis 3: random readers and fixed cases
    ((*RRFC, "test", "statistic"), "8.70"), ((*RRFC, "test", "p"), "0.0420"), ((*RRFC, "test", "df2"), "4"),
    ((*RRFC, "differences", 0, "se"), "0.01485"), ((*RRFC, "differences", 0, "df"), "4"),
    ((*RRFC, "differences", 0, "statistic"), "-2.95"), ((*RRFC, "differences", 0, "p"), "0.0420"),
    ((*RRFC, "differences", 0, "ci", 0), "-0.08502"), ((*RRFC, "differences", 0, "ci", 1), "-0.00258"),
    ((*RRFC, "treatments", 0, "se"), "0.02482994"), ((*RRFC, "treatments", 0, "df"), "4"),
    ((*RRFC, "treatments", 0, "ci", 0), "0.82809808"), ((*RRFC, "treatments", 0, "ci", 1), "0.96597599"),
    ((*RRFC, "treatments", 1, "se"), "0.01615303"),
    ((*RRFC, "treatments", 1, "ci", 0), "0.89598936"), ((*RRFC, "treatments", 1, "ci", 1), "0.98568536"),
]


@pytest.fixture(scope="module")
def van_dyke_json(vandyke_text, tmp_path_factory):  # noqa: F811
    path = tmp_path_factory.mktemp("vandyke") / "vandyke.imrmc"
    path.write_text(vandyke_text)
    out = io.StringIO()
    call_command("analyze", str(path), format="json", stdout=out)
    report = json.loads(out.getvalue())
    report["reader_auc"] = {}
    for reader in report["readers"]:
        report["reader_auc"].setdefault(reader["reader"], {})[reader["modality"]] = reader["estimate"]
    return report


def _at(report, path):
    value = report
    for key in path:
        value = value[key]
    return value


@pytest.mark.parametrize("path, printed", PRINTED, ids=["/".join(map(str, p)) + "=" + v for p, v in PRINTED])
def test_every_printed_figure_is_in_the_json(van_dyke_json, path, printed):
    value = _at(van_dyke_json, path)
    decimals = len(printed.partition(".")[2])
    assert abs(value - float(printed)) <= 0.5 * 10 ** -decimals + 1e-12, (value, printed)


def test_the_json_is_not_rounded(van_dyke_json):
    """The printed 8-decimal figures can only be matched from unrounded output."""
    estimate = _at(van_dyke_json, (*RRRC, "treatments", 0, "estimate"))
    assert estimate != round(estimate, 4) and estimate == pytest.approx(0.89703704, abs=5e-9)
