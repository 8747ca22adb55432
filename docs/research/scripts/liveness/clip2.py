import cv2, numpy as np
from faceprint.pipeline import Analyzer
a=Analyzer()
cap=cv2.VideoCapture('/work/shared/data/face_recognition_examples/examples/short_hamilton_clip.mp4')
embs={}; i=-1
while True:
    ok,bgr=cap.read(); i+=1
    if not ok: break
    if not (82<=i<=210): continue
    rgb=cv2.cvtColor(bgr,cv2.COLOR_BGR2RGB); fs=a.detect_array(rgb)
    if fs: embs[i]=a.embed_faces(rgb,[fs[0]])[0].embedding
    if i==150: cv2.imwrite('/tmp/liveness/clip150.png',bgr)
np.save('/tmp/liveness/clip_emb.npy',np.stack([embs[k] for k in sorted(embs)])); 
E=np.stack([embs[k] for k in sorted(embs)]); ks=sorted(embs)
S=E@E.T
print('frames',len(ks),'pairwise sim: min %.3f p5 %.3f median %.3f'%(S.min(),np.percentile(S,5),np.median(S)))
m=E.mean(0); m/=np.linalg.norm(m); s=E@m
print('sim to mean template: min %.3f p5 %.3f median %.3f, frames below 0.3363: %d'%(s.min(),np.percentile(s,5),np.median(s),(s<0.3363).sum()))
# running template: mean of frames so far
run=[]; acc=E[0].copy()
for j in range(1,len(E)):
    t=acc/np.linalg.norm(acc); run.append(float(E[j]@t)); acc+=E[j]
run=np.array(run); print('sim to running mean of previous frames: min %.3f p5 %.3f below 0.3363: %d below 0.2455: %d'%(run.min(),np.percentile(run,5),(run<0.3363).sum(),(run<0.2455).sum()))
# previous-frame continuity
pv=np.array([float(E[j]@E[j-1]) for j in range(1,len(E))]); print('sim to previous frame: min %.3f p1 %.3f'%(pv.min(),np.percentile(pv,1)))
# first-third vs last-third means
n=len(E)//3; A=E[:n].mean(0); B=E[-n:].mean(0); print('first third vs last third mean-embedding cos %.3f'%(A@B/np.linalg.norm(A)/np.linalg.norm(B)))
# mirandas enrol photo
from faceprint.pipeline import Analyzer as _A
r=a.embed('/work/shared/data/face_recognition_examples/examples/lin-manuel-miranda.png')[0].embedding
print('sim to enrol photo: min %.3f median %.3f below 0.3363: %d'%((E@r).min(),np.median(E@r),((E@r)<0.3363).sum()))
