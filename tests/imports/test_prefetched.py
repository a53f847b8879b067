"""The imports' read-ahead thread (imports.services.prefetched) and the quick GIL handover
while it runs."""

import sys
import threading

import pytest

from imports import services


@pytest.fixture
def default_interval():
    before = sys.getswitchinterval()
    sys.setswitchinterval(0.005)
    yield 0.005
    sys.setswitchinterval(before)


def test_the_chunks_come_in_order_with_a_quick_handover_only_while_they_do(default_interval):
    seen = []
    for chunk in services.prefetched(iter([[1, 2], [3], [4, 5]])):
        seen.append((chunk, sys.getswitchinterval()))
    assert seen == [([1, 2], 0.0005), ([3], 0.0005), ([4, 5], 0.0005)]
    assert sys.getswitchinterval() == default_interval


def test_the_readers_exception_reaches_the_caller_and_the_interval_is_put_back(default_interval):
    def chunks():
        yield [1]
        raise ValueError("line 7 is not CSV")

    with pytest.raises(ValueError, match="line 7"):
        for _ in services.prefetched(chunks()):
            pass
    assert sys.getswitchinterval() == default_interval


def test_a_caller_that_stops_early_puts_the_interval_back_and_stops_the_reader(default_interval):
    read = []

    def chunks():
        for n in range(1000):
            read.append(n)
            yield [n]

    stream = services.prefetched(chunks())
    assert next(stream) == [0]
    stream.close()
    assert sys.getswitchinterval() == default_interval
    assert len(read) < 10  # one ahead, not the whole file


def test_two_imports_at_once_share_it_and_the_last_one_out_puts_it_back(default_interval):
    first_in, second_done = threading.Event(), threading.Event()
    during: list[float] = []

    def first() -> None:
        with services.quick_handover():
            first_in.set()
            second_done.wait(5)
            during.append(sys.getswitchinterval())

    thread = threading.Thread(target=first)
    thread.start()
    assert first_in.wait(5)
    with services.quick_handover():
        assert sys.getswitchinterval() == 0.0005
    second_done.set()  # the second is out; the first still runs
    thread.join(5)
    assert during == [0.0005]
    assert sys.getswitchinterval() == default_interval
