"""utc_stamp writes what datetime.isoformat writes, for any moment, at either precision."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from rolebook.api.timestamps import utc_stamp

MOMENTS = st.floats(min_value=0, max_value=4e9, allow_nan=False, allow_infinity=False)


@given(MOMENTS, st.sampled_from([(3, "milliseconds"), (6, "microseconds")]))
def test_same_text_as_datetime(moment, precision):
    digits, timespec = precision
    expected = datetime.fromtimestamp(moment, UTC).isoformat(timespec=timespec)
    assert utc_stamp(moment, digits) == expected.replace("+00:00", "Z")


def test_a_fraction_that_rounds_up_carries_into_the_next_second():
    assert utc_stamp(1_700_000_000.9999996, 6) == "2023-11-14T22:13:21.000000Z"
    assert utc_stamp(1_700_000_000.9999996, 3) == "2023-11-14T22:13:21.000Z"
