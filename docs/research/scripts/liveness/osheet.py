import sys; sys.path.insert(0,'/tmp/liveness'); from load import *
from PIL import Image, ImageDraw
E=np.load('/tmp/liveness/lfw_emb.npy'); IDX={r['path']:i for i,r in enumerate(allrows)}
P={r['path']:r for r in rows}
R='/work/shared/data/lfw_dev/'
n=lambda s: f"images/{s.rsplit('_',1)[0]}/{s}.jpg"
def osheet(groups, out, size=180):
    cols=max(len(g) for g in groups); H=size+12
    S=Image.new('RGB',(cols*(size+4),len(groups)*H),'white'); d=ImageDraw.Draw(S)
    for gi,g in enumerate(groups):
        ref=E[IDX[n(g[0])]]
        for k,s in enumerate(g):
            p=n(s); r=P[p]; im=Image.open(R+p).convert('RGB').crop((25,25,125,125)).resize((size,size),Image.BICUBIC)
            x=k*(size+4); y=gi*H; S.paste(im,(x,y+12))
            d.text((x+2,y),f"{s[-4:]} y{r['yaw']:+.0f} e{r['fr_ear']:.2f}/{r['dl_ear']:.2f} s{float(E[IDX[p]]@ref):.2f}",fill='black')
    S.save(out)
