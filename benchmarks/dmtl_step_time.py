"""Training-step time of HGFN+DMTL against HGFN+LSEW, measured side by side.

    python -m benchmarks.dmtl_step_time [--batch-size 128] [--repeats 30]

The DMTL rows of `benchmarks.step_time` (HGFN+LSEW, HGFN+DMTL, DMTL on the last
shared layer); run `python -m benchmarks.step_time` for every baseline and
`--xla`.
"""

from benchmarks.step_time import main as _main


def main(argv=None):
    return _main(argv, variants=["hgfn+lsew", "hgfn+dmtl", "hgfn+dmtl(shared)"])


if __name__ == "__main__":
    main()
