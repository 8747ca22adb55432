import pickle, numpy as np, cv2
cv2.setNumThreads(1)
cap=cv2.VideoCapture('/work/shared/data/face_recognition_examples/examples/short_hamilton_clip.mp4'); H=[]
while True:
    ok,f=cap.read()
    if not ok: break
    hsv=cv2.cvtColor(cv2.resize(f,(160,90)),cv2.COLOR_BGR2HSV)
    h=cv2.calcHist([hsv],[0,1],None,[32,32],[0,180,0,256]); cv2.normalize(h,h,1,0,cv2.NORM_L1); H.append(h)
d=[cv2.compareHist(H[i-1],H[i],cv2.HISTCMP_BHATTACHARYYA) for i in range(1,len(H))]
d=np.array(d); top=np.argsort(d)[::-1][:6]
print('largest frame-to-frame hist distances (cut before frame):', [(int(i+1), round(float(d[i]),3)) for i in top], 'median', round(float(np.median(d)),3))
out=pickle.load(open('clip.pkl','rb'))
TH=0.3363237679004669
def iou(a,b):
    x1,y1=max(a[0],b[0]),max(a[1],b[1]); x2,y2=min(a[2],b[2]),min(a[3],b[3])
    i=max(0,x2-x1)*max(0,y2-y1); return i/((a[2]-a[0])*(a[3]-a[1])+(b[2]-b[0])*(b[3]-b[1])-i)
# gallery templates: take from identify cands is not vectors; re-embed gallery via faceprint quickly
from faceprint.gallery import Gallery
g=Gallery.open('/tmp/r15/g.db')
CUTS=[int(i+1) for i in np.where(d>0.35)[0]]
print('cuts',CUTS)
def run(step=1, iou_min=0.3, cos_min=0.2, max_age=None, cut=True):
    max_age=max_age or 2*step
    tracks=[]; nid=0; events=[]
    for o in out[::step]:
        fr=o['frame']
        dets=[(f['box'],f['emb']/np.linalg.norm(f['emb']),max(f['q']['score'],0.01) if f['q'] else 1.0) for f in o['faces'] if f['score']>=0.7]
        live=[t for t in tracks if fr-t['last']<=max_age]
        if cut and any(a<fr<=a+step-1+1 for a in CUTS):
            live=[]
            for t in tracks: t['last']=-10**9 if t['last']<fr else t['last']
        pairs=sorted([(iou(t['box'],b)+float(t['lastemb']@e), ti, di) for ti,t in enumerate(live) for di,(b,e,q) in enumerate(dets)
                      if iou(t['box'],b)>=iou_min and float(t['lastemb']@e)>=cos_min], reverse=True)
        ut=set(); ud=set()
        for s,ti,di in pairs:
            if ti in ut or di in ud: continue
            ut.add(ti); ud.add(di); t=live[ti]; b,e,q=dets[di]
            t['box']=b; t['last']=fr; t['lastemb']=e; t['sum']+=q*e; t['mean']=t['sum']; t['frames'].append(fr); t['n']+=1
        for di,(b,e,q) in enumerate(dets):
            if di in ud: continue
            nid+=1; t=dict(id=nid,lastemb=e,box=b,last=fr,sum=q*e,mean=q*e,frames=[fr],n=1,identity=None,hist=[]); tracks.append(t)
        for t in tracks:
            if t['last']!=fr: continue
            m=t['sum']/np.linalg.norm(t['sum'])
            best={c.subject:c.similarity for c in g.search(m[None].astype(np.float32),top_k=2)[0]}
            top=max(best,key=best.get)
            if t['identity'] is None and best[top]>=TH and t['n']>=3: t['identity']=top; events.append((fr,t['id'],top,round(best[top],3)))
            t['hist'].append((fr, top, round(best[top],3)))
    return tracks, events
for step,cut,cm in ((1,False,-1),(1,False,0.2),(1,True,0.2),(2,True,0.2),(3,True,0.2),(5,True,0.2)):
    tracks,ev=run(step,cut=cut,cos_min=cm); print('cut reset',cut,'cos gate',cm)
    print(f'step {step}: {len(tracks)} tracks;', [(t['id'],t['frames'][0],t['frames'][-1],t['n'],t['identity'], t['hist'][-1][2]) for t in tracks if t['n']>=2])
    print('   identified events', ev, ' singletons', sum(t['n']<2 for t in tracks))
