#!/usr/bin/env bash
# Compile the pure-Java DSP core and run its JUnit 4 tests on the JVM, against golden vectors
# that the Python runtime writes first. Needs javac/java 17 and Debian's junit4 (+ hamcrest).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(dirname "$here")"
build="$here/build/jvm"
python="${PYTHON:-python3}"
junit="${JUNIT_JAR:-/usr/share/java/junit4.jar}"
hamcrest="${HAMCREST_JAR:-/usr/share/java/hamcrest-core.jar}"
for jar in "$junit" "$hamcrest"; do
  [ -f "$jar" ] || { echo "error: $jar missing (apt-get install junit4)" >&2; exit 1; }
done
command -v javac >/dev/null || { echo "error: javac not found (Java 17 JDK)" >&2; exit 1; }

rm -rf "$build"
mkdir -p "$build/main" "$build/test"
"$python" "$here/make_golden_vectors.py" --out "$build/golden" "$@"
javac -d "$build/main" $(find "$here/dspcore/src/main/java" -name '*.java')
javac -d "$build/test" -cp "$build/main:$junit" $(find "$here/dspcore/src/test/java" -name '*.java')
java -Dgolden.dir="$build/golden" -cp "$build/main:$build/test:$junit:$hamcrest" org.junit.runner.JUnitCore \
  dev.tinydenoise.dsp.GoldenVectorTest dev.tinydenoise.dsp.StreamCoreTest
