"""`_Subscription.copy` is spelled out field by field for speed: it must copy every slot."""

from projections.engine.timeline import _Subscription


def test_copy_copies_every_slot():
    sub = _Subscription("s")
    for i, name in enumerate(_Subscription.__slots__):
        setattr(sub, name, object() if name != "subscription_id" else f"id{i}")
    other = sub.copy()
    assert other is not sub
    assert {name: getattr(other, name) for name in _Subscription.__slots__} == {
        name: getattr(sub, name) for name in _Subscription.__slots__}
