import pickle, numpy as np, supervision as sv, time, trackers
out=pickle.load(open('clip.pkl','rb'))
def truth(fr, box):
    # shot-based coarse label of a detection
    if 82<=fr<=210: return 'M' if box[1]<120 else 'FP'   # Miranda's face is in the upper part; hands/mic lower
    if fr>=211: return 'aud'
    return 'other'
for name,T in [('SORT',trackers.SORTTracker),('ByteTrack',trackers.ByteTrackTracker),('OC-SORT',trackers.OCSORTTracker)]:
    tr=T(); ids={}; t=time.perf_counter()
    for o in out:
        b=np.array([f['box'] for f in o['faces']],dtype=np.float32).reshape(-1,4); s=np.array([f['score'] for f in o['faces']],dtype=np.float32)
        d=sv.Detections(xyxy=b, confidence=s, class_id=np.zeros(len(s),int))
        r=tr.update(d)
        for box,tid in zip(r.xyxy, r.tracker_id):
            if tid<0: continue
            ids.setdefault(int(tid),[]).append((o['frame'], truth(o['frame'],box)))
    dt=time.perf_counter()-t
    summ=[(k, v[0][0], v[-1][0], len(v), sorted(set(x[1] for x in v))) for k,v in ids.items()]
    mir=[x for x in summ if 'M' in x[4]]
    print(f'{name}: {len(ids)} confirmed tracks, {dt*1e3/len(out):.2f} ms/frame; tracks with Miranda: {mir}; crossing a cut: {[x for x in summ if len(x[4])>1 or (x[1]<=210<x[2]) or (x[1]<82<=x[2])]}')
tr=trackers.ByteTrackTracker(); 
for o in out:
    b=np.array([f['box'] for f in o['faces']],dtype=np.float32).reshape(-1,4); s=np.array([f['score'] for f in o['faces']],dtype=np.float32)
    r=tr.update(sv.Detections(xyxy=b, confidence=s, class_id=np.zeros(len(s),int)))
    for box,tid in zip(r.xyxy, r.tracker_id):
        if tid==4 and (truth(o['frame'],box)=='FP' or o['frame'] in (210,211,212)):
            # which detection index
            k=int(np.argmax([np.abs(np.array(f['box'])-box).sum()*-1 for f in o['faces']]))
            print(o['frame'], box.astype(int), 'det', k, [x['identity'] for x in o['ids']][k] if k < len(o['ids']) else None)
