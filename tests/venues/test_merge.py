"""TimeMerge: time order across connections, and the same sequence whatever the live ticks."""

from hypothesis import given, strategies as st

from adlmon.events import Mark
from adlmon.venues.merge import TimeMerge


def mark(t, tag=0):
    return Mark("v", f"c{tag}", 1.0, None, t)


_inputs = st.lists(st.tuples(st.integers(0, 5000),  # receive time step
                             st.lists(st.integers(-3000, 500), max_size=4),  # event time - receive
                             st.lists(st.integers(0, 3000), max_size=2)),  # ticks after it
                   max_size=30)


@given(_inputs, st.integers(0, 2000))
def test_ticks_between_inputs_never_change_the_order(inputs, hold):
    plain, ticked = TimeMerge(hold), TimeMerge(hold)
    a, b = [], []
    t = 0
    for k, (step, offsets, ticks) in enumerate(inputs):
        for d in sorted(ticks):  # live ticks between the previous input and this one
            b += ticked.tick(t + min(d, step))
        t += step
        evs = [mark(t + o, k) for o in offsets]
        a += plain.add(evs, t)
        b += ticked.add(evs, t)
    a += plain.flush()
    b += ticked.flush()
    assert a == b
    assert len(a) == sum(len(o) for _s, o, _t in inputs)


def test_events_come_out_in_time_order_after_the_hold():
    m = TimeMerge(1000)
    assert m.add([mark(5000)], 5000) == []
    assert m.add([mark(4500)], 5400) == []  # another connection, a bit late
    assert [e.time_ms for e in m.add([], 6000)] == [4500, 5000]
    assert m.add([mark(4000)], 6001) == [mark(4000)] and m.late == 1
    assert m.flush() == []
