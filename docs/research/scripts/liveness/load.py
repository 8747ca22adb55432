import csv, numpy as np
rows=[r for r in csv.DictReader(open('/tmp/liveness/lfw_scan.csv'))]
allrows=rows
rows=[r for r in rows if r['nfaces']!='0']
for r in rows:
    for k in ['score','box_w','yaw','pitch','roll','fr_ear_l','fr_ear_r','fr_ear','dl_ear_l','dl_ear_r','dl_ear']: r[k]=float(r[k])
def col(k, rs=None): return np.array([r[k] for r in (rs or rows)])
