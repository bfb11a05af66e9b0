"""plan_instances' named records: what each field of an Instance and a Source holds."""

from __future__ import annotations

from supernet.compact import Instance, Source, plan_instances
from supernet.spec import ArchSpec, TaskArch


def test_instances_name_their_fields():
    # a: 1 -> 2, read-in at 1 and 2; b: 1 -> 2 with read-in at 1 only: node 1 shared, node 2 not
    a = TaskArch(((1, 2),), (1, 2), (2,), edge_gates=(0.5,), read_in_gates=(1.0, 0.25), read_out_gates=(1.0,))
    b = TaskArch(((1, 2),), (1,), (2,), edge_gates=(0.5,), read_in_gates=(1.0,), read_out_gates=(1.0,))
    instances, per_task = plan_instances(ArchSpec(2, 1, (("a", a), ("b", b))))
    assert all(isinstance(inst, Instance) for inst in instances)
    assert [inst.node for inst in instances] == [1, 2, 2]  # topological: by node
    assert per_task["a"][1] == per_task["b"][1] == 0
    first = instances[0]
    assert (first.read_in_gate, first.sources) == (1.0, ())
    a2, b2 = instances[per_task["a"][2]], instances[per_task["b"][2]]
    assert a2.read_in_gate == 0.25 and b2.read_in_gate is None
    for inst in (a2, b2):
        assert inst.sources == (Source(node=1, instance=0, gate=0.5),)
        assert (inst.sources[0].node, inst.sources[0].instance, inst.sources[0].gate) == (1, 0, 0.5)
