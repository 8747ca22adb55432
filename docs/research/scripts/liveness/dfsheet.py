import sys; sys.path.insert(0,'/tmp/liveness'); from load import *
from PIL import Image, ImageDraw
R='/work/shared/data/lfw_dev/images_deepfunneled/'
P={r['path']:r for r in rows}
def tile(path, band=(55,75,195,175), s=2):
    im=Image.open(R+path[len('images/'):]).convert('RGB').crop(band)
    return im.resize((im.width*s, im.height*s), Image.BICUBIC)
def sheet(paths, out, cols=3, labels=None):
    ts=[tile(p) for p in paths]; W,H=ts[0].size; H+=12
    n=(len(ts)+cols-1)//cols
    S=Image.new('RGB',(cols*(W+4),n*H),'white'); d=ImageDraw.Draw(S)
    for k,t in enumerate(ts):
        x=(k%cols)*(W+4); y=(k//cols)*H; S.paste(t,(x,y+12))
        r=P.get(paths[k]); l=labels[k] if labels else f"{paths[k].split('/')[-1][:-4]} ear {r['fr_ear']:.2f}/{r['dl_ear']:.2f} yaw {r['yaw']:.0f}"
        d.text((x+2,y),l,fill='black')
    S.save(out)
