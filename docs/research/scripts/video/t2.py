import time, cv2, numpy as np, os
from faceprint.pipeline import Analyzer
cap=cv2.VideoCapture('/work/shared/data/face_recognition_examples/examples/short_hamilton_clip.mp4'); F=[]
while True:
    ok,f=cap.read()
    if not ok: break
    F.append(np.ascontiguousarray(f[:,:,::-1]))
sel=list(range(82,102))+list(range(211,231))
for name,an in [('fr (default)',Analyzer()),('dlib hog+resnet34 (face_recognition equivalent)',Analyzer(embedder='dlib-resnet34'))]:
    an.embed_faces(F[0], an.detect_array(F[0]))
    for lab,idx in [('Miranda shot 82-101',sel[:20]),('audience 211-230',sel[20:])]:
        td=te=0; nf=0
        for i in idx:
            t=time.perf_counter(); fa=an.detect_array(F[i]); t1=time.perf_counter(); an.embed_faces(F[i],fa); t2=time.perf_counter()
            td+=t1-t; te+=t2-t1; nf+=len(fa)
        print(f'{name} {lab}: detect {td/20*1e3:.0f} ms/frame, embed {te/max(nf,1)*1e3:.0f} ms/face, {nf/20:.1f} faces/frame, total {(td+te)/20*1e3:.0f} ms/frame -> {20/(td+te):.1f} fps', os.getloadavg()[0])
