"""Guard G on a learning curve's cells: keep the model where the nested estimate is below the model's own figure."""
import json, sys, glob, statistics
from collections import defaultdict
files = sorted(glob.glob(sys.argv[1] + '/curve-*.json'))
rows = []
zs = {}
for f in files:
    d = json.load(open(f))
    direction = f.split('curve-')[1][:-5]
    for c in d['cells']:
        if c['arm'] == 'zero-shot':
            zs[(c['scenario'], direction)] = c['unweighted_accuracy']
for f in files:
    d = json.load(open(f))
    direction = f.split('curve-')[1][:-5]
    for c in d['cells']:
        if c['arm'] == 'zero-shot': continue
        z = zs[(c['scenario'], direction)]
        est, before = c.get('estimate_ua'), c.get('estimate_before_ua')
        unchanged = c['kept'].startswith('unchanged') and 'statistics' not in c['kept']
        fire = (not unchanged) and est is not None and before is not None and est < before
        g = z if fire else c['unweighted_accuracy']
        rows.append(dict(sc=c['scenario'], dir=direction, arm=c['arm'], k=c['k'], draw=c['draw'], shipped=c['unweighted_accuracy'], guard=g, zs=z, fire=fire, est=est, before=before, kept=c['kept']))
for r in rows:
    print(f"{r['sc']:13s} {r['dir']:8s} {r['arm']:7s} k{r['k']:<3d} d{r['draw']} shipped {r['shipped']:5.1f} guard {r['guard']:5.1f} zs {r['zs']:5.1f} fire {int(r['fire'])} est {r['est']} before {r['before']} {r['kept']}")
print('cells', len(rows), 'fired', sum(r['fire'] for r in rows))
print('mean shipped %.2f guard %.2f' % (statistics.mean(r['shipped'] for r in rows), statistics.mean(r['guard'] for r in rows)))
groups = defaultdict(list)
for r in rows: groups[(r['sc'], r['arm'], r['k'], r['dir'])].append(r)
for key, rs in sorted(groups.items()):
    s = statistics.mean(r['shipped'] for r in rs); g = statistics.mean(r['guard'] for r in rs); z = rs[0]['zs']
    flag = ('SHIPPED<ZS-1 ' if s < z - 1 else '') + ('GUARD<ZS-1' if g < z - 1 else '')
    print(key, 'zs %.1f shipped %.1f guard %.1f %s' % (z, s, g, flag))
by = defaultdict(list)
for r in rows: by[(r['sc'], r['arm'], r['k'])].append(r)
for key, rs in sorted(by.items()):
    print(key, 'shipped %.2f guard %.2f' % (statistics.mean(r['shipped'] for r in rs), statistics.mean(r['guard'] for r in rs)))
