"""Convert an npz feature file, or the embedded reviews, to sharded TFRecord files.

    python -m training.convert --input features.npz --output DIR [--shard-rows 10000] [--seed 0]
    python -m training.convert --input clothing --output DIR [--limit N] [--seed 0]

Writes `DIR/dataset.json` and `DIR/<split>-NNNNN.tfrecord` (see
`hgfn_keras.data.tfrecord`): the same rows, splits and row order as
`load_npz(features.npz, seed)` (or `load_clothing(seed, limit)`, its texts kept as
raw strings), so that training from `tfrecord:DIR` sees the data that training
from `npz:features.npz` (or `--dataset clothing`) sees. The npz file (or the
embedded CSV, 23,486 rows) is read whole once (the npz contract is an in-memory
format); the shards are then read a batch at a time. Bad input prints one
`error:` line and exits with status 2.
"""

import argparse
import sys

from training._cli import run_main


def parse_args(argv=None):
    """The `python -m training.convert` arguments of `argv` (None: `sys.argv[1:]`)."""
    p = argparse.ArgumentParser(
        prog="python -m training.convert",
        description="Convert an npz feature file to sharded TFRecord files.",
    )
    p.add_argument("--input", required=True,
                   help="The .npz feature file, or 'clothing' (the embedded reviews, texts "
                   "included).")
    p.add_argument("--output", required=True,
                   help="The folder to write (it must not hold a dataset yet).")
    p.add_argument("--shard-rows", type=int, default=10_000,
                   help="Rows per shard (each shard holds one split). Default: %(default)s")
    p.add_argument("--seed", type=int, default=0,
                   help="Seeds the 60/20/20 split of a file without a `split` array, as "
                   "`training.train --seed` does. Default: %(default)s")
    p.add_argument("--limit", type=int, default=None,
                   help="With --input clothing: keep a random subset of this many rows (>= 10), "
                   "as `training.train --limit` does. Default: every row")
    args = p.parse_args(argv)
    if args.shard_rows < 1:
        p.error(f"--shard-rows must be a positive integer. Received: {args.shard_rows}")
    return args


def run(args):
    """Writes the shards; returns the `StreamedDataset`."""
    from hgfn_keras.data.tfrecord import write_tfrecord

    source = args.input
    if args.limit is not None and source != "clothing":
        raise ValueError(f"--limit applies only to --input clothing. Received: --input {source}")
    if source == "clothing":
        from hgfn_keras.data import load_clothing

        source = load_clothing(seed=args.seed, limit=args.limit)
    data = write_tfrecord(source, args.output, shard_rows=args.shard_rows, seed=args.seed)
    shards = data.header["shards"]
    print(f"Wrote {data.header['rows']} rows of {data.name!r} to {args.output}: "
          f"{len(shards)} shards, rows per split "
          f"{ {s: data.size(s) for s in ('train', 'validation', 'test')} }, modalities "
          f"{ {m.name: m.width if m.kind != 'text' else 'text' for m in data.modalities} }, tasks "
          f"{ {t.name: t.num_classes for t in data.tasks} }.")
    return data


def main(argv=None):
    return run_main(run, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
