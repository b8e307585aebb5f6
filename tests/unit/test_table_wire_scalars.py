"""The table writes common scalars (str, bool, int) itself: exactly what boto3's serializer writes,
and numbers DynamoDB cannot hold are still refused by boto3."""

from __future__ import annotations

from typing import Any

import pytest
from boto3.dynamodb.types import TypeSerializer
from hypothesis import given, settings
from hypothesis import strategies as st

from mailroom.store.table import serialize

BOTO3 = TypeSerializer()


@settings(max_examples=200, derandomize=True)
@given(
    st.one_of(
        st.text(),
        st.booleans(),
        st.integers(min_value=-(10**38) + 1, max_value=10**38 - 1),
        st.integers(min_value=-(10**12), max_value=10**12),
    )
)
def test_scalars_are_written_as_boto3_writes_them(value: Any) -> None:
    assert serialize({"v": value}) == {"v": BOTO3.serialize(value)}
    assert serialize({"m": {"v": value}, "l": [value]}) == {
        "m": {"M": {"v": BOTO3.serialize(value)}},
        "l": {"L": [BOTO3.serialize(value)]},
    }


@pytest.mark.parametrize("value", [10**38, -(10**38), 10**50])
def test_numbers_beyond_dynamodb_precision_are_refused(value: int) -> None:
    with pytest.raises(Exception) as refused:
        serialize({"v": value})
    with pytest.raises(type(refused.value)):
        BOTO3.serialize(value)
