import cv2, numpy as np, time, json
from faceprint.pipeline import Analyzer
from faceprint import models
a=Analyzer(landmarks68=True); d68=models.load('dlib68','landmarks')
def ear1(e): return (np.linalg.norm(e[1]-e[5])+np.linalg.norm(e[2]-e[4]))/(2*np.linalg.norm(e[0]-e[3]))
cap=cv2.VideoCapture('/work/shared/data/face_recognition_examples/examples/short_hamilton_clip.mp4')
out=[]; ref=None; i=-1; t=time.time()
while True:
    ok,bgr=cap.read(); i+=1
    if not ok: break
    if i<0: continue
    rgb=cv2.cvtColor(bgr,cv2.COLOR_BGR2RGB)
    fs=a.detect_array(rgb)
    if not fs: out.append(dict(frame=i,n=0)); continue
    f=fs[0]; q=d68.predict(rgb,f.box).points; p=f.landmarks68.points
    e=a.embed_faces(rgb,[f])[0].embedding
    if ref is None and 82<=i: ref=e
    out.append(dict(frame=i,n=len(fs),w=round(f.box.width),yaw=round(f.pose.yaw,1),pitch=round(f.pose.pitch,1),
      fr=round((ear1(p[36:42])+ear1(p[42:48]))/2,3),dl=round((ear1(q[36:42])+ear1(q[42:48]))/2,3),
      sim=None if ref is None else round(float(e@ref),3)))
json.dump(out,open('/tmp/liveness/clip.json','w'))
print('t',time.time()-t, 'frames', i)
for o in out:
    if 75<=o['frame']<=215: print(o)
