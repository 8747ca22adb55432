import csv, time, sys, numpy as np
from faceprint.pipeline import Analyzer
from faceprint import models
ROOT='/work/shared/data/lfw_dev/'
a = Analyzer(landmarks68=True)
d68 = models.load("dlib68","landmarks")
def ear(p):
    def one(e):
        return (np.linalg.norm(e[1]-e[5])+np.linalg.norm(e[2]-e[4]))/(2*np.linalg.norm(e[0]-e[3]))
    return one(p[36:42]), one(p[42:48])
rows=list(csv.DictReader(open(ROOT+'identities.csv')))
out=[]; embs=[]; lm={}
t0=time.time()
for i,r in enumerate(rows):
    rgb=a.load(ROOT+r['path'])
    h,w=rgb.shape[:2]
    fs=a.detect_array(rgb)
    if not fs:
        out.append(dict(path=r['path'],identity=r['identity'],nfaces=0)); embs.append(np.zeros(512,np.float32)); continue
    f=min(fs,key=lambda f:((f.box.x1+f.box.x2)/2-w/2)**2+((f.box.y1+f.box.y2)/2-h/2)**2)
    p=f.landmarks68.points
    q=d68.predict(rgb,f.box).points
    el,er=ear(p); dl,dr=ear(q)
    e=a.embed_faces(rgb,[f])[0]
    embs.append(np.asarray(e.embedding,np.float32))
    lm[r['path']]=(p,q,[f.box.x1,f.box.y1,f.box.x2,f.box.y2])
    out.append(dict(path=r['path'],identity=r['identity'],nfaces=len(fs),score=round(f.score,3),
        box_w=round(f.box.width,1),yaw=round(f.pose.yaw,1),pitch=round(f.pose.pitch,1),roll=round(f.pose.roll,1),
        fr_ear_l=round(el,4),fr_ear_r=round(er,4),fr_ear=round((el+er)/2,4),
        dl_ear_l=round(dl,4),dl_ear_r=round(dr,4),dl_ear=round((dl+dr)/2,4)))
    if i%500==0: print(i,time.time()-t0,flush=True)
keys=['path','identity','nfaces','score','box_w','yaw','pitch','roll','fr_ear_l','fr_ear_r','fr_ear','dl_ear_l','dl_ear_r','dl_ear']
with open('/tmp/liveness/lfw_scan.csv','w',newline='') as fh:
    wr=csv.DictWriter(fh,keys); wr.writeheader(); wr.writerows(out)
np.save('/tmp/liveness/lfw_emb.npy',np.stack(embs))
import pickle; pickle.dump(lm,open('/tmp/liveness/lfw_lm.pkl','wb'))
print('done',time.time()-t0)
