#!/usr/bin/env python3
"""No import circle between the modules of src/ (CI runs it): reads every `use` and every
`crate::`/`super::`/`self::` path of each file (tests left out), builds the graph of which module
uses which, and prints its strongly connected components of more than one module. Exit 1 if
there is any. An equivalent of `cargo modules dependencies --acyclic` without the tool.

    python3 tools/imports.py [SRC_DIR]
"""
import os,re,sys,collections
root=os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'src') if len(sys.argv)<2 else sys.argv[1]
# module path for each file
mods={}
for dp,dn,fn in os.walk(root):
    for f in fn:
        if not f.endswith('.rs'): continue
        p=os.path.join(dp,f); rel=os.path.relpath(p,root)[:-3].split('/')
        if rel[-1] in ('mod','lib','main'): rel=rel[:-1]
        mods['::'.join(rel)]=p
def resolve(cur, path):
    parts=path.split('::')
    if parts[0]=='crate': base=[]; parts=parts[1:]
    elif parts[0]=='super':
        base=cur.split('::') if cur else []
        # file module: super = parent
        while parts and parts[0]=='super': base=base[:-1]; parts=parts[1:]
    elif parts[0]=='self': base=cur.split('::') if cur else []; parts=parts[1:]
    else: return None
    # longest prefix that is a module
    best=None
    for i in range(len(parts),-1,-1):
        m='::'.join(base+parts[:i])
        if m in mods: best=m; break
    return best
edges=collections.defaultdict(set)
for m,p in mods.items():
    src=open(p).read()
    src=re.sub(r'//[^\n]*','',src)
    # strip test modules roughly
    src=re.sub(r'#\[cfg\(test\)\]\s*mod tests\s*\{.*',' ',src,flags=re.S)
    for mt in re.finditer(r'\b((?:crate|super|self)(?:::[A-Za-z_][A-Za-z0-9_]*)+)',src):
        t=resolve(m,mt.group(1))
        if t is not None and t!=m and not m.startswith(t+'::') and t!='':
            edges[m].add(t)
    # grouped imports use super::{a, b}
    for mt in re.finditer(r'\b((?:crate|super)(?:::[a-z_]+)*)::\{([^}]*)\}',src):
        for item in mt.group(2).split(','):
            item=item.strip().split(' ')[0].split('::')[0]
            if not item or item=='self': continue
            t=resolve(m,mt.group(1)+'::'+item)
            if t is not None and t!=m and not m.startswith(t+'::') and t!='':
                edges[m].add(t)
# tarjan
idx={};low={};st=[];on=set();sccs=[];c=[0]
sys.setrecursionlimit(10000)
def sc(v):
    idx[v]=low[v]=c[0];c[0]+=1;st.append(v);on.add(v)
    for w in edges[v]:
        if w not in idx: sc(w);low[v]=min(low[v],low[w])
        elif w in on: low[v]=min(low[v],idx[w])
    if low[v]==idx[v]:
        comp=[]
        while True:
            w=st.pop();on.discard(w);comp.append(w)
            if w==v:break
        sccs.append(comp)
for v in list(mods):
    if v not in idx: sc(v)
bad = [sorted(comp) for comp in sccs if len(comp) > 1]
for comp in bad:
    print(f"import circle: {' -> '.join(comp)}")
sys.exit(1 if bad else 0)
