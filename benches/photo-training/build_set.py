"""Training photographs from Debian's wallpaper packages (see SOURCES.md)."""
import os, collections
from PIL import Image, ImageOps
Image.MAX_IMAGE_PIXELS=None
import sys
# Usage: python build_set.py WALL_DIR OUT_DIR, WALL_DIR holding the two packages extracted
# (dpkg-deb -x mate-backgrounds_1.26.0-1_all.deb WALL_DIR/mate; dpkg-deb -x
# plasma-workspace-wallpapers_4%3a5.27.5-2_all.deb WALL_DIR/plasma-workspace-wallpapers;
# dpkg-deb -x lomiri-wallpapers-16.04_20.04.0-2_all.deb WALL_DIR/lomiri1604; dpkg-deb -x
# lomiri-wallpapers-20.04_20.04.0-2_all.deb WALL_DIR/lomiri2004), with Pillow. Writes
# OUT_DIR/<package>-<name>.png (RGB, longer side 1024) and SOURCES.md.
W, O = sys.argv[1], sys.argv[2]
VER={'mate-backgrounds':'1.26.0-1','plasma-workspace-wallpapers':'4:5.27.5-2',
     'lomiri-wallpapers-16.04':'20.04.0-2','lomiri-wallpapers-20.04':'20.04.0-2'}
M='usr/share/backgrounds/mate/nature/'
mate=[ # file, holder (debian/copyright)
 ('Aqua','Charles Barbin (2008)'),
 ('Blinds','Lennart Poettering; Andrea Cimitan (2008)'),
 ('Dune','Marco Cogoni (2007); Hylke Bons (2008)'),
 ('FreshFlower','Jens Ansorg (2005)'),
 ('Garden','Charles Barbin (2008)'),
 ('GreenMeadow','Timothy Schellhase (2005); Lapo Calamandrei (2008)'),
 ('LadyBird','Charles Barbin (2008)'),
 ('RainDrops','"blackcombwhistler07" (2008)'),
 ('Storm','Sergey Nazarov (2008)'),
 ('TwoWings','Charles Barbin; Hylke Bons (2008)'),
 ('Wood','Jean-François Fortin Tam (2008)'),
 ('YellowFlower','Charles Barbin (2008)'),
]
P='usr/share/wallpapers/'
plasma=[ # wallpaper, file, author (metadata.json)
 ('BytheWater','2560x1600.jpg','Maciej Wiklo'),
 ('ColdRipple','2560x1600.jpg','Risto Saukonpää'),
 ('ColorfulCups','2560x1600.jpg','Dmitri Popov'),
 ('DarkestHour','2560x1600.jpg','Risto Saukonpää'),
 ('EveningGlow','2560x1600.jpg','Ian Hex'),
 ('FallenLeaf','2560x1600.jpg','Martin Klapetek'),
 ('Grey','2560x1600.jpg','Sigi Sagi'),
 ('Kite','2560x1600.jpg','Risto Saukonpää'),
 ('OneStandsOut','2560x1600.jpg','Risto Saukonpää'),
 ('Path','2560x1600.jpg','Risto Saukonpää'),
 ('summer_1am','2560x1600.jpg','Risto Saukonpää'),
]
L='usr/share/backgrounds/'
lomiri=[ # package, folder, file, licence, holder (debian/copyright); umang (a gradient render),
         # Fossa, Infinite-Sea and Painting-Colors (renders) are not photographs
 ('lomiri-wallpapers-16.04','lomiri1604','aitzgorri_by_Aitzol_Berasategi','CC-BY-4.0','Aitzol Berasategi (2018)'),
 ('lomiri-wallpapers-16.04','lomiri1604','analogpattern_by_Peter_Nerlich','CC-BY-SA-4.0','Peter Nerlich (2018)'),
 ('lomiri-wallpapers-16.04','lomiri1604','Bridge_by_Sander_Klootwijk','CC-BY-SA-4.0','Sander Klootwijk (2018)'),
 ('lomiri-wallpapers-16.04','lomiri1604','Dragonfly_by_Bolly','CC-BY-SA-4.0','"Bolly" (2018)'),
 ('lomiri-wallpapers-16.04','lomiri1604','free_by_Peter_Nerlich','CC-BY-SA-4.0','Peter Nerlich (2018)'),
 ('lomiri-wallpapers-16.04','lomiri1604','friends_by_Aitzol_Berasategi','CC-BY-4.0','Aitzol Berasategi (2018)'),
 ('lomiri-wallpapers-16.04','lomiri1604','greentock_by_Peter_Nerlich','CC-BY-SA-4.0','Peter Nerlich (2018)'),
 ('lomiri-wallpapers-16.04','lomiri1604','life_by_Aitzol_Berasategi','CC-BY-4.0','Aitzol Berasategi (2018)'),
 ('lomiri-wallpapers-16.04','lomiri1604','picosdeeuropa_by_Aitzol_Berasategi','CC-BY-4.0','Aitzol Berasategi (2018)'),
 ('lomiri-wallpapers-16.04','lomiri1604','Picture_0B_by_freespace','CC-BY-4.0','Trevor "Freespace" (2018)'),
 ('lomiri-wallpapers-16.04','lomiri1604','Picture_1A_by_freespace','CC-BY-4.0','Trevor "Freespace" (2018)'),
 ('lomiri-wallpapers-16.04','lomiri1604','seeding_by_Clements_Engelhardt','CC0-1.0','Clemens Engelhardt (2018)'),
 ('lomiri-wallpapers-16.04','lomiri1604','sunset_by_Aitzol_Berasategi','CC-BY-4.0','Aitzol Berasategi (2018)'),
 ('lomiri-wallpapers-16.04','lomiri1604','Wine_by_Jakkub_Mede','CC-BY-4.0','Jakub Mede (2018)'),
 ('lomiri-wallpapers-20.04','lomiri2004','Kleiber_by_Lukas_Baubkus','CC-BY-SA-3.0','Lukas Baubkus (2021)'),
]
jobs=[]
for n,h in mate:
    jobs.append(('mate-backgrounds','mate',M+n+'.jpg',n,'GPL-2+',h))
for n,f,a in plasma:
    jobs.append(('plasma-workspace-wallpapers','plasma-workspace-wallpapers',P+n+'/contents/images/'+f,n,
                 'GPL-2+ (debian/copyright); LGPL-3 (metadata.json)', a+'; KDE Visual Design Group (2014, debian/copyright)'))
for pkg,d,n,lic,h in lomiri:
    jobs.append((pkg,d,L+n+'.jpg',n,lic,h))
rows=[]
for pkg,d,rel,base,lic,holder in jobs:
    src=os.path.join(W,d,rel); assert not os.path.islink(src), src
    im=Image.open(src); osz=im.size
    im=ImageOps.exif_transpose(im).convert('RGB')
    w,h=im.size
    if max(w,h)>1024:
        s=1024/max(w,h); im=im.resize((max(1,round(w*s)),max(1,round(h*s))),Image.LANCZOS)
    if min(im.size)<256:
        print('SKIP small',src); continue
    out=f'{pkg}-{base}.png'; im.save(os.path.join(O,out))
    rows.append((out,pkg,VER[pkg],'/'+rel,f'{osz[0]}x{osz[1]}',f'{im.size[0]}x{im.size[1]}',lic,holder))
    print(out,osz,im.size,im.mode)
L=['# Photo training set (deblurring) — sources','',
 'All images are photographs of real scenes taken from Debian wallpaper packages, converted to 8-bit RGB PNG and',
 'downscaled with Lanczos so the longer side is 1024 px (never upscaled). Licences are as given in each package\'s',
 '`usr/share/doc/<pkg>/copyright`; for plasma-workspace-wallpapers the per-wallpaper `metadata.json` licence/author is also given.','',
 '| File | Package | Debian version | Original path | Original size | Output size | Licence | Copyright holder |',
 '|---|---|---|---|---|---|---|---|']
for r in rows: L.append('| '+' | '.join(r)+' |')
L+=['','## Counts','','| Package | Photos |','|---|---|']
for k,v in collections.Counter(r[1] for r in rows).items(): L.append(f'| {k} | {v} |')
L+=['| lomiri-wallpapers (20.04.0-2), sway-backgrounds (1.7-6) | 0 (renders) |']
L+=['| ukui-wallpapers (20.04.3-1.1, CC-BY-SA-3.0) | 0 (all illustrations/renders) |','| gnome-backgrounds (43.1-1) | 0 (all renders/vector/plain colour) |']
L+=['','| Licence | Photos |','|---|---|']
for k,v in collections.Counter(r[6] for r in rows).items(): L.append(f'| {k} | {v} |')
L+=['',f'**Total: {len(rows)}**','']
open(os.path.join(O,'SOURCES.md'),'w').write('\n'.join(L))
