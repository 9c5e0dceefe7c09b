"""Change the run-time settings a bundled or exported .tflite carries, without re-exporting.

The attenuation limit and the post-filter are applied by the runtime, not computed by the
graph, so they can be retuned on a user's own recordings after training: this rewrites
only the spec's ``run_time`` (the graph and weights stay byte for byte) and checks that
the runtime reads the new file back. Options not given keep the file's values.

    python -m export.set_run_time runtime/models/crnn_int8.tflite --min-gain-db -25 -o mine.tflite
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from runtime.errors import DenoiseError
from runtime.model_file import SPEC_METADATA_NAME, read_spec
from runtime.spec import RUN_TIME_DEFAULTS

from .to_tflite import add_run_time_arguments, embed_metadata


def set_run_time(model_path, out_path, changes: dict) -> dict:
    """Write ``model_path`` with ``changes`` merged into its run-time settings to
    ``out_path`` (may be the same file); returns the settings now in force."""
    spec = read_spec(model_path)
    settings = {**RUN_TIME_DEFAULTS, **spec.run_time, **changes}
    spec = spec.replace(run_time=settings)  # refuses bad values
    flat = embed_metadata(Path(model_path).read_bytes(), SPEC_METADATA_NAME, spec.to_json().encode())
    out = Path(out_path)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_bytes(flat)
    if read_spec(tmp).run_time != settings:
        tmp.unlink()
        raise DenoiseError(f"{out}: the rewritten spec did not read back")
    tmp.replace(out)
    return settings


def build_parser():
    p = argparse.ArgumentParser(prog="python -m export.set_run_time",
                                description="Rewrite the run-time settings (attenuation limit, post-filter) "
                                            "embedded in a .tflite's spec; the graph is untouched.")
    p.add_argument("model", help=".tflite exported by python -m export.to_tflite")
    p.add_argument("-o", "--out", default=None, help="output file (default: rewrite MODEL in place)")
    add_run_time_arguments(p, None)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    changes = {k: getattr(args, k) for k in RUN_TIME_DEFAULTS if hasattr(args, k)}
    if not changes:
        print("error: give at least one setting to change (see --help)", file=sys.stderr)
        return 2
    try:
        settings = set_run_time(args.model, args.out or args.model, changes)
    except DenoiseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {args.out or args.model}")
    print(f"  run-time  {', '.join(f'{k} {v}' for k, v in settings.items())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
