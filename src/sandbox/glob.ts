/**
 * The globs of `--exclude`: `*` and `?` within a path segment, `**` across
 * segments. A glob without a `/` matches a name at any depth (`*.pyc`,
 * `.git`), as in .gitignore; one with a `/` matches the whole relative path.
 */

const cache = new Map<string, RegExp>();

function toRegExp(glob: string): RegExp {
  let source = "";
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === "*" && glob[i + 1] === "*") {
      // `**/` matches no directory or any number of them; a trailing `**` anything below.
      if (glob[i + 2] === "/") {
        source += "(?:.*/)?";
        i += 2;
      } else {
        source += ".*";
        i += 1;
      }
    } else if (c === "*") source += "[^/]*";
    else if (c === "?") source += "[^/]";
    else source += c.replace(/[.+^${}()|[\]\\]/g, "\\$&");
  }
  return new RegExp(`^${source}$`);
}

function regExpOf(glob: string): RegExp {
  let re = cache.get(glob);
  if (re === undefined) {
    re = toRegExp(glob.replace(/^\.\//, "").replace(/\/+$/, ""));
    cache.set(glob, re);
  }
  return re;
}

/** Does the relative path `path` (segments joined by `/`) match one of the globs? */
export function matchesAnyGlob(path: string, globs: readonly string[]): boolean {
  const name = path.slice(path.lastIndexOf("/") + 1);
  return globs.some((glob) => {
    const re = regExpOf(glob);
    return glob.replace(/\/+$/, "").includes("/") ? re.test(path) : re.test(name);
  });
}
