#!/usr/bin/env python3
"""The layers of the code, read from the tree: per crate, its largest file, its longest function,
every function longer than LIMIT lines (default 120), and every import cycle between its
modules; functions are counted in src/ and benches/, and in the page's JavaScript (web/). With
--check, exits 1 when any function is too long or any cycle exists (CI runs this).

    python3 scripts/layers.py [--check] [ROOT]
"""
import os, re, sys, collections
args = [a for a in sys.argv[1:] if a != '--check']
check = '--check' in sys.argv[1:]
root = args[0] if args else os.path.join(os.path.dirname(os.path.abspath(__file__)), '..')
limit = int(os.environ.get('LIMIT', '120'))
bad = 0
crates = [d for d in sorted(os.listdir(root)) if os.path.isfile(os.path.join(root, d, 'Cargo.toml'))]
fn_re = re.compile(r'^\s*(pub(\([^)]*\))?\s+)?(const\s+)?(async\s+)?(unsafe\s+)?(extern\s+"C"\s+)?fn\s+(\w+)')
def strip(line):
    # drop strings, chars and comments (rough)
    line = re.sub(r'"(\\.|[^"\\])*"', '""', line)
    line = re.sub(r'//.*', '', line)
    line = re.sub(r"'(\\.|[^'\\])'", "''", line)
    return line
def functions(path):
    lines = open(path, encoding='utf-8').read().split('\n')
    out = []
    i = 0
    while i < len(lines):
        m = fn_re.match(lines[i])
        if m:
            name = m.group(7); depth = 0; started = False; j = i
            while j < len(lines):
                s = strip(lines[j])
                if not started and ';' in s and '{' not in s and depth == 0:
                    break
                for ch in s:
                    if ch == '{': depth += 1; started = True
                    elif ch == '}': depth -= 1
                if started and depth <= 0:
                    out.append((j - i + 1, name, i + 1)); break
                j += 1
        i += 1
    return out
def modname(crate_src, path):
    rel = os.path.relpath(path, crate_src)
    parts = rel[:-3].split(os.sep)
    if parts[-1] in ('mod',): parts = parts[:-1]
    return parts[0] if parts else 'lib'
def sources(d, ext):
    out = []
    for dp, _, fs in os.walk(d):
        out.extend(os.path.join(dp, f) for f in fs if f.endswith(ext))
    return sorted(out)
js_fn_re = re.compile(r'^\s*(async\s+)?function\s*\*?\s*(\w+)\s*\(')
def js_strip(line):
    line = re.sub(r"'(\\.|[^'\\])*'", "''", line)
    line = re.sub(r'"(\\.|[^"\\])*"', '""', line)
    line = re.sub(r'//.*', '', line)
    return line
def js_functions(path):
    """Named JavaScript functions (`function name(`) and their lengths, by brace depth."""
    lines = open(path, encoding='utf-8').read().split('\n')
    out = []
    for i, line in enumerate(lines):
        m = js_fn_re.match(line)
        if not m: continue
        depth = 0; started = False
        for j in range(i, len(lines)):
            for ch in js_strip(lines[j]):
                if ch == '{': depth += 1; started = True
                elif ch == '}': depth -= 1
            if started and depth <= 0:
                out.append((j - i + 1, m.group(2), i + 1)); break
    return out
web = os.path.join(root, 'web')
if os.path.isdir(web):
    fns = sorted(((n, f'{os.path.relpath(f, root)}:{line} {name}')
                  for f in sources(web, '.js') + sources(web, '.mjs') if 'node_modules' not in f
                  for n, name, line in js_functions(f)), reverse=True)
    if fns:
        print(f'web: longest function {fns[0][1]} ({fns[0][0]} lines)')
    for n, where in fns:
        if n > limit:
            print(f'   long fn {n:4d} {where}')
            bad += 1
for c in crates:
    src = os.path.join(root, c, 'src')
    files = sources(src, '.rs')
    if not files: continue
    sizes = sorted(((sum(1 for _ in open(f)), os.path.relpath(f, root)) for f in files), reverse=True)
    fns = []
    graph = collections.defaultdict(set)
    for f in sources(os.path.join(root, c, 'benches'), '.rs'):
        for n, name, line in functions(f):
            fns.append((n, f'{os.path.relpath(f, root)}:{line} {name}'))
    for f in files:
        for n, name, line in functions(f):
            fns.append((n, f'{os.path.relpath(f, root)}:{line} {name}'))
        m = modname(src, f)
        if m in ('main', 'lib') or f.endswith('bin') : continue
        text = '\n'.join(strip(l) for l in open(f).read().split('\n') if not l.lstrip().startswith('//'))
        for dep in set(re.findall(r'crate::(\w+)', text)) | set(re.findall(r'super::(\w+)', text) if os.path.dirname(f) != src else []):
            if dep != m: graph[m].add(dep)
        # use crate::{a, b}
        for grp in re.findall(r'use crate::\{([^}]*)\}', text):
            for dep in re.findall(r'(\w+)', grp):
                if dep != m and dep not in ('self',): graph[m].add(dep)
    fns.sort(reverse=True)
    # cycles via Tarjan
    index = {}; low = {}; stack = []; on = set(); sccs = []; counter = [0]
    def strong(v):
        index[v] = low[v] = counter[0]; counter[0] += 1; stack.append(v); on.add(v)
        for w in graph.get(v, ()):
            if w not in index: strong(w); low[v] = min(low[v], low[w])
            elif w in on: low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop(); on.discard(w); comp.append(w)
                if w == v: break
            if len(comp) > 1: sccs.append(sorted(comp))
    for v in list(graph):
        if v not in index: strong(v)
    print(f'{c}: largest file {sizes[0][1]} ({sizes[0][0]} lines); longest fn {fns[0][1]} ({fns[0][0]} lines)')
    for n, where in fns:
        if n > limit:
            print(f'   long fn {n:4d} {where}')
            bad += 1
    for s in sccs:
        print(f'   import cycle: {" <-> ".join(s)}')
        bad += 1
if check and bad:
    print(f'layers: {bad} problem(s): no function over {limit} lines and no import cycle', file=sys.stderr)
    sys.exit(1)
