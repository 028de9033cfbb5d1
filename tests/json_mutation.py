"""One hypothesis mutation of a JSON document, shared by the loaders' property tests."""

import copy
from collections.abc import Sequence

from hypothesis import strategies as st


def mutate_node(data: st.DataObject, document, values: st.SearchStrategy, new_keys: Sequence[str]):
    """`document` with one node, chosen among all of them, replaced, dropped or added.

    Args:
        values: the JSON values a node can become.
        new_keys: keys that may be added to an object.
    """
    def value():
        return copy.deepcopy(data.draw(values))  # a copy: mutating it never changes the strategy's constants

    nodes = [(None, None)]
    stack = [document] if isinstance(document, (dict, list)) else []
    while stack:
        container = stack.pop()
        keys = list(container) if isinstance(container, dict) else range(len(container))
        for key in keys:
            nodes.append((container, key))
            if isinstance(container[key], (dict, list)):
                stack.append(container[key])
        if isinstance(container, dict):
            nodes.append((container, data.draw(st.sampled_from(list(new_keys)))))
        else:
            nodes.append((container, len(container)))
    container, key = data.draw(st.sampled_from(nodes))
    if container is None:
        return value()
    if isinstance(container, list) and key == len(container):
        container.append(value())
    elif data.draw(st.booleans()) and (key in container if isinstance(container, dict) else True):
        del container[key]
    else:
        container[key] = value()
    return document
