import pickle, numpy as np, json
out=pickle.load(open('clip.pkl','rb'))
TH=0.3363237679004669; MIN=0.7
td=np.array([o['t_det'] for o in out]); te=np.array([o['t_emb'] for o in out]); nf=np.array([len(o['faces']) for o in out])
print('detect ms: median %.1f p90 %.1f mean %.1f; embed ms/frame median %.1f; faces/frame mean %.2f; embed ms per face median %.1f'%(np.median(td)*1e3,np.percentile(td,90)*1e3,td.mean()*1e3,np.median(te[nf>0])*1e3,nf.mean(),np.median((te[nf>0]/nf[nf>0]))*1e3))
for a,b in [(0,19),(20,81),(82,210),(211,274)]:
    s=slice(a,b+1); print(f' shot {a}-{b}: det median {np.median(td[s])*1e3:.0f} ms, embed median {np.median(te[s])*1e3:.0f} ms, faces/frame {nf[s].mean():.2f} (>=min_score {np.mean([sum(f["score"]>=MIN for f in o["faces"]) for o in out[a:b+1]]):.2f})')
# per frame listing compact
def row(o):
    return [(round(f['score'],2), [int(x) for x in f['box']]) for f in o['faces']]
mir=[o['frame'] for o in out if any(x['identity']=='Lin-Manuel Miranda' for x in o['ids'])]
def ranges(ix):
    r=[];
    for i in ix:
        if r and i==r[-1][1]+1: r[-1][1]=i
        else: r.append([i,i])
    return r
print('Miranda identified frames:', ranges(mir))
oba=[o['frame'] for o in out if any(x['identity']=='Barack Obama' for x in o['ids'])]
print('Obama identified frames:', ranges(oba))
# 82-210 detail
sims=[]
for o in out[82:211]:
    best=None
    for x in o['ids']:
        c=dict(x['cands'])
        s=c.get('Lin-Manuel Miranda')
        if s is not None and (best is None or s>best[0]): best=(s,x['identity'],x['box'])
    sims.append(best)
    others=[x['identity'] for x in o['ids'] if x['identity'] not in (None,'Lin-Manuel Miranda')]
    if best is None or best[1]!='Lin-Manuel Miranda' or others:
        print(' frame',o['frame'],'faces',row(o),'ids',[(x['identity'],round(x['sim'] or 0,3)) for x in o['ids']])
v=np.array([s[0] if s else np.nan for s in sims])
print('Miranda sim 82-210: min %.3f p10 %.3f median %.3f max %.3f; n frames with face %d/129'%(np.nanmin(v),np.nanpercentile(v,10),np.nanmedian(v),np.nanmax(v),np.sum(~np.isnan(v))))
print('sims every 4th frame:', ' '.join(f'{82+i}:{x:.2f}' for i,x in enumerate(v) if i%4==0))
# max non-Miranda similarity to Miranda anywhere, and max sim to Obama outside 211+
allc=[(o['frame'],n,s) for o in out for x in o['ids'] for n,s in x['cands']]
print('highest Obama sims in 0-210:', sorted([(round(s,3),f) for f,n,s in allc if n=='Barack Obama' and f<211])[-3:])
print('highest Miranda sims in 211-274:', sorted([(round(s,3),f) for f,n,s in allc if n=='Lin-Manuel Miranda' and f>=211])[-3:])
print('highest Miranda sims in 20-81:', sorted([(round(s,3),f) for f,n,s in allc if n=='Lin-Manuel Miranda' and 20<=f<=81])[-3:])
for i in [0,10,19,30,60,81,82,150,210,211,230,260,274]:
    o=out[i]; print(' frame',i,'faces',row(o),'ids',[(x['identity'],round(x['sim'] or 0,3)) for x in o['ids']])
