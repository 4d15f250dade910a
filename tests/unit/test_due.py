from hypothesis import given
from hypothesis import strategies as st

from streams.domain.due import DueIndex


def test_pop_only_due_customers_in_due_order():
    index = DueIndex()
    index.schedule("a", 30, 0)
    index.schedule("b", 10, 1)
    index.schedule("c", 20, 0)
    assert index.pop_due(20, limit=10) == [("b", 1), ("c", 0)]
    assert len(index) == 1
    assert index.pop_due(25, limit=10) == []


def test_rescheduling_replaces_the_old_entry():
    index = DueIndex()
    index.schedule("a", 10, 0)
    index.schedule("a", 50, 0)
    assert index.pop_due(20, limit=10) == []
    assert index.pop_due(50, limit=10) == [("a", 0)]


def test_forget_and_revoked_partitions():
    index = DueIndex()
    index.schedule("a", 10, 0)
    index.schedule("b", 10, 1)
    index.schedule("c", 10, 2)
    index.forget("a")
    index.keep_partitions([2])
    assert index.pop_due(100, limit=10) == [("c", 2)]


@given(st.lists(st.tuples(st.sampled_from("abcdefgh"), st.integers(0, 100)), max_size=60),
       st.integers(0, 100), st.integers(1, 5))
def test_each_tick_touches_only_due_customers(schedule, now, limit):
    index = DueIndex()
    latest = {}
    for customer, due in schedule:
        index.schedule(customer, due, 0)
        latest[customer] = due
    popped = index.pop_due(now, limit)
    assert len(popped) <= limit
    assert all(latest[c] <= now for c, _ in popped)
    assert len({c for c, _ in popped}) == len(popped)
    due_count = sum(1 for d in latest.values() if d <= now)
    assert len(popped) == min(limit, due_count)


def test_rescheduling_often_does_not_grow_the_heap_without_bound():
    index = DueIndex()
    for n in range(20_000):
        index.schedule(f"c{n % 10}", 1_000 + n, 0)
    assert len(index) == 10
    assert len(index._heap) <= 2 * 10 + 1024 + 1
    due = index.pop_due(10**9, limit=100)
    assert sorted(c for c, _ in due) == sorted(f"c{n}" for n in range(10))
