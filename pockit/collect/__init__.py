"""pockit.collect: the events of several boxes (edge devices) of one PoC, gathered from a broker into one folder.

Boxes send through their mqtt or kafka sink (``outputs.box_id`` stamps each event with ``extra.box`` and
``extra.raised_at``; ``snapshots: true`` on the sink sends the snapshot inside the message, see
:mod:`pockit.collect.wire`). ``pockit collect`` (:func:`pockit.collect.consumers.run_collector`) writes one
events.jsonl, deduplicated on (box, id), ordered by time, resumable after a restart
(:mod:`pockit.collect.store`).
"""
