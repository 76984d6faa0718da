import json, glob, re, statistics
base = {}
for f in glob.glob('docs/results/adapt/guard-choice/curve-*.json'):
    d = json.load(open(f)); dirn = f.split('curve-')[1][:-5]
    zs = {c['scenario']: c['unweighted_accuracy'] for c in d['cells'] if c['arm'] == 'zero-shot'}
    for c in d['cells']:
        if c['arm'] == 'zero-shot': continue
        unch = c['kept'].startswith('unchanged') and 'statistics' not in c['kept']
        fire = not unch and c['estimate_ua'] is not None and c['estimate_before_ua'] is not None and c['estimate_ua'] < c['estimate_before_ua']
        base[(dirn, c['scenario'], c['arm'], c['k'], c['draw'])] = (c['unweighted_accuracy'], zs[c['scenario']] if fire else c['unweighted_accuracy'])
for line in open('docs/results/adapt/guard-choice/guard-telephone-babble.txt'):
    m = re.match(r'telephone-babble (\S+) (\w+)\s+k(\d+)\s+d(\d+) shipped\s+([\d.]+) guard\s+([\d.]+)', line)
    if m:
        base[(m[1], 'telephone-babble', m[2], int(m[3]), int(m[4]))] = (float(m[5]), float(m[6]))
rows = []
for f in glob.glob('docs/results/adapt/guard-choice/paired-bound/curve-*.json'):
    d = json.load(open(f)); dirn = f.split('curve-')[1][:-5]
    for c in d['cells']:
        if c['arm'] == 'zero-shot': continue
        key = (dirn, c['scenario'], c['arm'], c['k'], c['draw'])
        none, g = base[key]
        rows.append((key, none, g, c['unweighted_accuracy'], bool(c.get('refused'))))
for r in sorted(rows):
    if r[1] != r[2] or r[4]: print(r)
for sc in ('ordinary', 'few-emotions', 'telephone-babble', None):
    rs = [r for r in rows if sc is None or r[0][1] == sc]
    if rs: print(sc or 'all', len(rs), 'none %.2f G %.2f G2 %.2f G2-refused %d' % tuple([statistics.mean(r[i] for r in rs) for i in (1, 2, 3)] + [sum(r[4] for r in rs)]))
