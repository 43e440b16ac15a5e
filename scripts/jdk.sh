# Sourced by the project's scripts: exports JAVA_HOME pointing at a JDK >= 22.
# Order: $JAVA_HOME, the java on PATH, then /usr/lib/jvm/* and /opt/*jdk* (newest first).
java_major() {  # prints the feature version of the java binary $1, or 0
  "$1" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p' | head -1 | sed 's/^1\.//' || echo 0
}
find_jdk() {
  local c candidates=()
  [ -n "${JAVA_HOME:-}" ] && candidates+=("$JAVA_HOME")
  if command -v java >/dev/null 2>&1; then
    candidates+=("$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")")
  fi
  # REFLDMSEG_JDK_SEARCH overrides where installed JDKs are looked for (globs, space separated)
  for c in $(ls -d ${REFLDMSEG_JDK_SEARCH:-/usr/lib/jvm/* /opt/*jdk* /opt/java/*} 2>/dev/null | sort -rV); do candidates+=("$c"); done
  for c in "${candidates[@]}"; do
    if [ -x "$c/bin/java" ] && [ -x "$c/bin/javac" ]; then
      local v; v=$(java_major "$c/bin/java")
      if [ "${v:-0}" -ge 22 ] 2>/dev/null; then echo "$c"; return 0; fi
    fi
  done
  return 1
}
if ! JAVA_HOME=$(find_jdk); then
  echo "error: no JDK 22 or newer found (looked at \$JAVA_HOME, the java on PATH, /usr/lib/jvm/*, /opt/*jdk*)." >&2
  echo "       refldmseg-java needs JDK 25 (Vector API + FFM). Install Temurin 25 or set JAVA_HOME." >&2
  exit 1
fi
export JAVA_HOME
# Maven 3.8 uses sun.misc.Unsafe; keep JDK 25 quiet about it.
export MAVEN_OPTS="${MAVEN_OPTS:-} --sun-misc-unsafe-memory-access=allow"
export PATH="$JAVA_HOME/bin:$PATH"
. "$(dirname "${BASH_SOURCE[0]}")/jvm-flags.sh"
