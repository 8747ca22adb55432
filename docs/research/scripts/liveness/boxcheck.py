import sys, pickle, random, time, numpy as np
sys.path.insert(0,'/tmp/liveness'); from load import *
from faceprint.pipeline import Analyzer
from faceprint import models
from faceprint.types import Box
lm=pickle.load(open('/tmp/liveness/lfw_lm.pkl','rb'))
h=Analyzer(detector='hog', embedder='dlib-resnet34')
d68=models.load('dlib68','landmarks')
R='/work/shared/data/lfw_dev/'
random.seed(0); sample=random.sample(rows,300)
def ear1(e): return (np.linalg.norm(e[1]-e[5])+np.linalg.norm(e[2]-e[4]))/(2*np.linalg.norm(e[0]-e[3]))
def ear(p): return (ear1(p[36:42])+ear1(p[42:48]))/2
res=[]; boxes=[]
t=time.time()
for r in sample:
    rgb=h.load(R+r['path']); H,W=rgb.shape[:2]
    dets=h.detector.detect(rgb,1)
    if not dets: continue
    b=min(dets,key=lambda d:((d.box.x1+d.box.x2)/2-W/2)**2+((d.box.y1+d.box.y2)/2-H/2)**2).box
    b=Box(b.x1/2,b.y1/2,b.x2/2,b.y2/2) if False else b
    q=d68.predict(rgb,b).points
    p,qf,fb=lm[r['path']]
    iod=np.linalg.norm(q[36:42].mean(0)-q[42:48].mean(0))
    e_eye=lambda a,c: np.linalg.norm(a[36:48]-c[36:48],axis=1).mean()/iod
    res.append((e_eye(qf,q), e_eye(p,q), ear(q), r['dl_ear'], r['fr_ear']))
    boxes.append((fb,[b.x1,b.y1,b.x2,b.y2]))
print('n',len(res),'t',time.time()-t)
a=np.array(res)
print('eye-point error vs dlib68@hog (fraction of inter-ocular): dlib68@fr-detect median %.3f p90 %.3f; fr-landmark median %.3f p90 %.3f'%(np.median(a[:,0]),np.percentile(a[:,0],90),np.median(a[:,1]),np.percentile(a[:,1],90)))
print('EAR corr: dlib68@hog vs dlib68@fr %.3f ; vs fr-landmark %.3f; mean EAR hog %.3f fr-box %.3f frlm %.3f'%(np.corrcoef(a[:,2],a[:,3])[0,1],np.corrcoef(a[:,2],a[:,4])[0,1],a[:,2].mean(),a[:,3].mean(),a[:,4].mean()))
fb=np.array([x[0] for x in boxes]); hb=np.array([x[1] for x in boxes])
fw=fb[:,2]-fb[:,0]; hw=hb[:,2]-hb[:,0]
print('box width ratio hog/fr median %.3f; fr box h/w %.3f; hog h/w %.3f'%(np.median(hw/fw), np.median((fb[:,3]-fb[:,1])/fw), np.median((hb[:,3]-hb[:,1])/hw)))
print('centre offset (hog-fr)/fr_w: dx %.3f dy %.3f'%(np.median(((hb[:,0]+hb[:,2])-(fb[:,0]+fb[:,2]))/2/fw), np.median(((hb[:,1]+hb[:,3])-(fb[:,1]+fb[:,3]))/2/fw)))
# hog-like square box from fr-detect box
res2=[]
for r,(fbx,hbx) in zip([s for s in sample],boxes):
    pass
