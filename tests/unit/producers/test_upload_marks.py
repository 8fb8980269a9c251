"""The gateway's upload marks (producers/gateway/uploads.py): what a mark says about the
records refused in the batch that set it, and how it is written to Kafka."""

from __future__ import annotations

from producers.gateway.uploads import MAX_REFUSALS_KEPT, Mark, decode_mark, encode_mark


def test_a_mark_round_trips_with_its_refusals() -> None:
    mark = Mark(top=12, floor=6, refused={8: "foreign_device", 9: "foreign_device", 12: "corrupt_record"})
    assert decode_mark(encode_mark(mark)) == mark


def test_a_plain_number_is_a_mark_that_knows_no_refusals() -> None:
    old = decode_mark(b"42")
    assert old == Mark(42) and old.refused_earlier([41, 42]) is None
    assert encode_mark(Mark(42)) == b"42"


def test_refusals_of_a_resent_batch_come_from_the_mark_by_index() -> None:
    mark = Mark(top=12, floor=6, refused={8: "foreign_device", 12: "kind_not_accepted"})
    assert mark.refused_earlier([7, 8, 9, 10, 11, 12]) == {1: "foreign_device", 5: "kind_not_accepted"}
    assert mark.refused_earlier([9, 10]) == {}  # known: none of these was refused


def test_a_mark_does_not_answer_for_numbers_it_never_saw() -> None:
    mark = Mark(top=12, floor=6, refused={8: "foreign_device"})
    assert mark.refused_earlier([5, 6, 7, 8]) is None  # 5 and 6 were committed before this mark
    assert mark.refused_earlier([11, 12, 13]) is None  # 13 is above it
    assert mark.refused_earlier([]) is None


def test_too_many_refusals_for_one_record_keep_none() -> None:
    many = Mark(top=MAX_REFUSALS_KEPT + 10, floor=0, refused={s: "foreign_device" for s in range(1, MAX_REFUSALS_KEPT + 2)})
    assert decode_mark(encode_mark(many)) == Mark(MAX_REFUSALS_KEPT + 10)
