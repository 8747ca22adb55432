import time, pickle, sys, json
from pathlib import Path
import cv2, numpy as np
from faceprint.pipeline import Analyzer
from faceprint.gallery import Gallery
D = Path('/work/shared/data/face_recognition_examples')
tmp = Path('/tmp/r15'); db = tmp/'g.db'
if db.exists(): db.unlink()
an = Analyzer()
g = Gallery.open(db, analyzer=an)
t=time.perf_counter()
r1 = g.enroll('Lin-Manuel Miranda', [D/'examples/lin-manuel-miranda.png'])
obama = [D/'tests/test_images'/f for f in ['obama.jpg','obama2.jpg','obama3.jpg']] + [D/'examples/obama-480p.jpg', D/'examples/obama_small.jpg']
r2 = g.enroll('Barack Obama', obama)
print('enroll', time.perf_counter()-t, json.dumps(r1.to_dict())[:300], json.dumps(r2.to_dict())[:600])
# warm up
cap = cv2.VideoCapture(str(D/'examples/short_hamilton_clip.mp4'))
frames=[]
while True:
    ok, bgr = cap.read()
    if not ok: break
    frames.append(bgr)
an.detect_array(frames[0][:,:,::-1].copy())
out=[]
for i,bgr in enumerate(frames):
    rgb = np.ascontiguousarray(bgr[:,:,::-1])
    t0=time.perf_counter(); faces = an.detect_array(rgb, min_score=0.0); t1=time.perf_counter()
    emb = an.embed_faces(rgb, faces); t2=time.perf_counter()
    ids = g.identify_faces([e for e,f in zip(emb,faces) if f.score>=an.min_score], far=1e-3) if emb else []
    t3=time.perf_counter()
    out.append(dict(frame=i, t_det=t1-t0, t_emb=t2-t1, t_id=t3-t2,
        faces=[dict(box=f.box.to_list(), score=f.score, pose=f.pose.to_dict() if f.pose else None,
                    q=(e.quality.to_dict() if e.quality else None), emb=e.embedding.astype(np.float32), norm=e.embedding_norm) for f,e in zip(faces,emb)],
        ids=[dict(box=x.box.to_list(), identity=x.identity, sim=x.similarity, cands=[(c.subject,c.similarity) for c in x.candidates]) for x in ids]))
    if i%25==0: print(i, len(faces), round(t1-t0,3), round(t2-t1,3), [(x.identity, round(x.similarity or 0,3)) for x in ids], flush=True)
pickle.dump(out, open(tmp/'clip.pkl','wb'))
print('threshold', an.embedder_card.threshold_for(1e-3))
