"""python3 -m lstm.plot LOG.jsonl [-o loss.png] [--title TEXT]

Draws a training log written by `lstm train --log` (or lstm.train(log=...)):
training loss and validation loss against step, and tokens per second.
Needs matplotlib (Debian: python3-matplotlib); uses the Agg backend (no display)."""
import argparse
import json
import sys


def read_log(path):
    """The records of a JSONL training log as a list of dicts (blank lines skipped).
    ValueError names the line that is not JSON."""
    recs = []
    with open(path, "rb") as f:
        for i, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except ValueError as e:
                raise ValueError(f"{path}:{i}: not a JSON record: {e}") from None
            if not isinstance(rec, dict) or not isinstance(rec.get("step"), (int, float)) \
                    or not isinstance(rec.get("loss"), (int, float)):
                raise ValueError(f"{path}:{i}: not a training record (an object with a step and a loss)")
            recs.append(rec)
    if not recs:
        raise ValueError(f"{path}: no records")
    return recs


def plot(recs, out, title=None):
    """Writes the picture of the records to out (PNG, SVG or PDF by its extension)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [r["step"] for r in recs]
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(8, 6), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    ax1.plot(steps, [r["loss"] for r in recs], lw=0.8, alpha=0.8, label="training loss")
    val = [(r["step"], r["val_loss"]) for r in recs if r.get("val_loss") is not None]  # (null: inf or nan)
    if val:
        ax1.plot([s for s, _ in val], [v for _, v in val], "o-", ms=3, label="validation loss")
    ax1.set_ylabel("cross-entropy (nats/char)")
    ax1.grid(alpha=0.3)
    ax1.legend()
    if title:
        ax1.set_title(title)
    ax2.plot(steps, [r.get("tokens_per_s", float("nan")) for r in recs], lw=0.8, color="tab:green")
    ax2.set_ylabel("tokens/s")
    ax2.set_xlabel("step")
    ax2.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main(argv=None):
    """The command line: python3 -m lstm.plot LOG.jsonl -o loss.png."""
    ap = argparse.ArgumentParser(prog="python3 -m lstm.plot", description=__doc__.split("\n\n")[1])
    ap.add_argument("log", help="a JSONL training log")
    ap.add_argument("-o", "--out", default="loss.png", help="output picture (default loss.png)")
    ap.add_argument("--title", default=None, help="a title for the picture")
    a = ap.parse_args(argv)
    try:
        plot(read_log(a.log), a.out, a.title)
    except (OSError, ValueError, KeyError) as e:
        print(f"lstm.plot: {e}", file=sys.stderr)
        return 1
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
