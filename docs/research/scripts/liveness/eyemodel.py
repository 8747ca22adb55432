import sys, pickle, numpy as np, onnxruntime as ort, cv2, csv, time
sys.path.insert(0,'/tmp/liveness'); from load import *
lm=pickle.load(open('/tmp/liveness/lfw_lm.pkl','rb'))
so=ort.SessionOptions(); so.intra_op_num_threads=1
s=ort.InferenceSession('/work/notes/faceplugin/package/model/fr_eye.onnx',so,providers=['CPUExecutionProvider'])
print([(i.name,i.shape) for i in s.get_inputs()],[(o.name,o.shape) for o in s.get_outputs()])
def crops(grey, L):
    H,W=grey.shape; out=[]
    for a,b,c,d,l,r in [(37,38,40,41,36,39),(43,44,46,47,42,45)]:
        cx=int((L[a,0]+L[b,0]+L[c,0]+L[d,0])/4); cy=int((L[a,1]+L[b,1]+L[c,1]+L[d,1])/4)
        sz=int((L[r,0]-L[l,0])*1.6); x=max(int(cx-sz/2),0); y=max(int(cy-sz/2),0)
        sz=min(sz,W-x-1,H-y-1); sz=max(sz,2)
        out.append(cv2.resize(grey[y:y+sz,x:x+sz],(24,24)).astype(np.float32)/255.0)
    return np.stack(out)[:,None]
def sm(z): z=np.exp(z-z.max(1,keepdims=True)); return z/z.sum(1,keepdims=True)
R='/work/shared/data/lfw_dev/'
res={}
t=time.time()
for r in rows:
    img=cv2.imread(R+r['path']); grey=cv2.cvtColor(img,cv2.COLOR_BGR2GRAY)
    p,q,_=lm[r['path']]
    o=[]
    for L in (p,q):
        x=crops(grey,L)
        z=np.concatenate([s.run(None,{s.get_inputs()[0].name:x[i:i+1]})[0] for i in range(2)])
        o.append(sm(z)[:,0])
    res[r['path']]=o
print('t',time.time()-t)
pickle.dump(res,open('/tmp/liveness/eye_p0.pkl','wb'))
