"""The publisher puts a keyed record on Kafka's default partition for its key, the one the
Java client and aiokafka choose, so a click and the conversion naming its transaction_id
meet on one partition whoever produced them."""

from __future__ import annotations

import random

from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as kafka_murmur2

from afflux_plumbing.publish import key_partition, murmur2


def test_murmur2_is_kafkas_hash_for_keys_of_every_length_and_byte() -> None:
    rng = random.Random(18)
    keys = [bytes(rng.randrange(256) for _ in range(length)) for length in range(0, 130) for _ in range(8)]
    keys += [b"", b"\xff" * 7, b"0123456789abcdef0123456789abcdef-offer_1"]
    for key in keys:
        assert murmur2(key) == kafka_murmur2(key), key


def test_a_key_goes_to_the_partition_kafkas_default_partitioner_chooses() -> None:
    rng = random.Random(7)
    default = DefaultPartitioner()
    for partitions in ([0], [0, 1, 2, 3], list(range(12))):
        for _ in range(500):
            key = rng.randbytes(rng.randrange(1, 80))
            assert key_partition(key, partitions, partitions) == default(key, partitions, partitions)


def test_a_record_without_a_key_goes_to_an_available_partition() -> None:
    assert key_partition(None, [0, 1, 2, 3], [2]) == 2
