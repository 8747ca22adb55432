import time, sys, os, tempfile
import numpy as np, cv2, av
cv2.setNumThreads(1)
P='/work/shared/data/face_recognition_examples/examples/short_hamilton_clip.mp4'
print('cv2', cv2.__version__, 'av', av.__version__)
# OpenCV
def cv_decode():
    cap=cv2.VideoCapture(P); n=0; ts=[]
    meta=dict(count=cap.get(cv2.CAP_PROP_FRAME_COUNT), fps=cap.get(cv2.CAP_PROP_FPS), w=cap.get(cv2.CAP_PROP_FRAME_WIDTH), backend=cap.getBackendName())
    while True:
        ok,f=cap.read()
        if not ok: break
        ts.append(cap.get(cv2.CAP_PROP_POS_MSEC)); n+=1
    return n, ts, meta
def av_decode(threads=None, fmt='bgr24'):
    c=av.open(P); s=c.streams.video[0]
    if threads: s.thread_type='AUTO'
    else: s.thread_type='SLICE'; s.codec_context.thread_count=1
    n=0; ts=[]
    meta=dict(frames=s.frames, rate=str(s.average_rate), tb=str(s.time_base), dur=s.duration, start=s.start_time, codec=s.codec_context.name)
    for fr in c.decode(s):
        a=fr.to_ndarray(format=fmt); ts.append(float(fr.pts*s.time_base)); n+=1
    c.close(); return n, ts, meta
for name,fn in [('cv2',cv_decode),('av 1thr',lambda: av_decode(False)),('av auto',lambda: av_decode(True)),('av rgb24 1thr', lambda: av_decode(False,'rgb24'))]:
    best=1e9
    for _ in range(3):
        t=time.perf_counter(); n,ts,meta=fn(); dt=time.perf_counter()-t; best=min(best,dt)
    print(f'{name}: {n} frames, best {best:.3f}s -> {n/best:.0f} fps; meta {meta}; ts[:4] {[round(x,4) for x in ts[:4]]} ts[-2:] {[round(x,4) for x in ts[-2:]]}')
    if name=='cv2': cvts=ts
    if name=='av 1thr': avts=ts
cvts=np.array(cvts)/1000; avts=np.array(avts)
print('cv POS_MSEC after read minus pts(av):', np.round((cvts-avts)[:5],4), 'max abs diff', np.abs(cvts-avts).max(), 'diff hist', np.unique(np.round(cvts-avts,4), return_counts=True))
print('av pts diffs unique', np.unique(np.round(np.diff(avts),5), return_counts=True))
# seeking
cap=cv2.VideoCapture(P)
for target in [100, 211, 150]:
    t=time.perf_counter(); cap.set(cv2.CAP_PROP_POS_FRAMES, target); ok,f=cap.read(); dt=time.perf_counter()-t
    ref=cv2.VideoCapture(P); 
    for _ in range(target): ref.grab()
    ok2,g=ref.read()
    print('cv seek frame',target,'ok',ok,'%.3fs'%dt,'pos after', cap.get(cv2.CAP_PROP_POS_FRAMES)-1, 'exact match', np.array_equal(f,g))
c=av.open(P); s=c.streams.video[0]
for target in [100,211]:
    t=time.perf_counter(); tsec=target/float(s.average_rate); c.seek(int(tsec/s.time_base), stream=s, backward=True, any_frame=False)
    got=None; skipped=0
    for fr in c.decode(s):
        idx=round(float(fr.pts*s.time_base)*float(s.average_rate))
        if idx>=target: got=idx; break
        skipped+=1
    print('av seek to', target, 'got frame', got, 'decoded from keyframe skipping', skipped, '%.3fs'%(time.perf_counter()-t))
# keyframes
c=av.open(P); s=c.streams.video[0]
keys=[round(float(p.pts*s.time_base)*float(s.average_rate)) for p in c.demux(s) if p.is_keyframe and p.pts is not None]
print('keyframes', keys)
# writing
frames=[]; cap=cv2.VideoCapture(P)
for _ in range(60):
    ok,f=cap.read(); frames.append(f)
d=tempfile.mkdtemp()
for fourcc in ['mp4v','avc1','H264','X264','MJPG','VP80','XVID']:
    path=os.path.join(d,f'o_{fourcc}.'+('avi' if fourcc in('MJPG','XVID') else 'mp4'))
    w=cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*fourcc), 29.97, (640,360))
    opened=w.isOpened(); t=time.perf_counter()
    if opened:
        for f in frames: w.write(f)
    w.release(); dt=time.perf_counter()-t
    sz=os.path.getsize(path) if os.path.exists(path) else 0
    nread=0
    if sz:
        r=cv2.VideoCapture(path)
        while r.read()[0]: nread+=1
    print('cv2 VideoWriter', fourcc, 'opened', opened, 'bytes', sz, 'read back', nread, '%.0f fps'%(60/dt) if opened else '')
for codec,opts in [('libx264',{'crf':'23','preset':'veryfast'}),('h264',{}),('mpeg4',{}),('libopenh264',{})]:
    path=os.path.join(d,f'p_{codec}.mp4')
    try:
        o=av.open(path,'w'); st=o.add_stream(codec, rate=30000//1001 if False else 30); st.width=640; st.height=360; st.pix_fmt='yuv420p'; st.options=opts
        t=time.perf_counter()
        for f in frames:
            for pk in st.encode(av.VideoFrame.from_ndarray(f, format='bgr24')): o.mux(pk)
        for pk in st.encode(): o.mux(pk)
        o.close(); dt=time.perf_counter()-t
        r=av.open(path); n=sum(1 for _ in r.decode(video=0)); cc=r.streams.video[0].codec_context.name; r.close()
        print('av write', codec, 'ok bytes', os.path.getsize(path), 'read back', n, cc, '%.0f fps'%(60/dt))
    except Exception as e: print('av write', codec, 'FAIL', type(e).__name__, str(e)[:100])
# cv2 reads the x264 file?
r=cv2.VideoCapture(os.path.join(d,'p_libx264.mp4')); n=0
while r.read()[0]: n+=1
print('cv2 reads av libx264 output frames', n)
print(cv2.getBuildInformation().split('Video I/O:')[1].split('Parallel')[0])
